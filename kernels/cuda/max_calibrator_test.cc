// cuda::MaxCalibrator against its CPU twin kernels::MaxCalibrator: per tensor, per channel on
// every axis and on axis tuples, odd shapes, every dtype and memory, several batches, and the
// same refusals.
#include "kernels/cuda/max_calibrator.h"

#include <bit>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_testing.h"
#include "kernels/max_calibrator.h"

namespace qcal::kernels::cuda {
namespace {

using testing::kAllDTypes;
using testing::PlacedBatch;
using testing::Placement;
using testing::RandomBatch;
using testing::RawBatch;
using testing::TestContext;

int64_t Elements(const std::vector<int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

void ExpectSameAmax(const kernels::MaxCalibrator& cpu, const MaxCalibrator& gpu,
                    const std::string& what) {
  const absl::StatusOr<std::vector<float>> amax = gpu.amax();
  ASSERT_TRUE(amax.ok()) << what << ": " << amax.status();
  ASSERT_EQ(amax->size(), cpu.amax().size()) << what;
  EXPECT_EQ(gpu.amax_size(), static_cast<int64_t>(cpu.amax().size())) << what;
  EXPECT_EQ(gpu.channel_shape(), cpu.channel_shape()) << what;
  for (size_t c = 0; c < amax->size(); ++c) {
    ASSERT_EQ(std::bit_cast<uint32_t>((*amax)[c]), std::bit_cast<uint32_t>(cpu.amax()[c]))
        << what << ": channel " << c << " " << (*amax)[c] << " vs " << cpu.amax()[c];
  }
}

struct Case {
  std::vector<int64_t> shape;
  std::vector<int> axes;
};

TEST(MaxCalibrator, PerTensorAndPerChannelLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  const Case cases[] = {
      {{1}, {}},
      {{7}, {}},
      {{7}, {0}},
      {{64, 3, 3, 3}, {0}},     // conv weight, axis 0
      {{8, 16, 5, 7}, {1}},     // activation, axis 1 (small inner run)
      {{8, 16, 5, 7}, {-1}},    // last axis
      {{3, 1, 37, 1, 5}, {2}},  // size-1 axes merged away
      {{2, 3, 4, 5}, {0, 2}},   // an axis tuple: alternating runs
      {{2, 3, 4, 5}, {1, 3}},
      {{1, 1, 1}, {1}},     // a single channel of size 1
      {{5000, 3}, {1}},     // few channels, many rows
      {{3, 9000}, {1}},     // more channels than fit in shared memory
      {{4, 64, 257}, {1}},  // inner run long enough for vector loads
      {{2, 3, 2, 3, 2, 3, 2}, {0, 2, 4, 6}},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    for (const DType dtype : kAllDTypes) {
      for (const Placement placement : {Placement::kPageable, Placement::kDeviceUnaligned}) {
        const std::string what = absl::StrCat(
            "shape [", absl::StrJoin(c.shape, ","), "] axes [", absl::StrJoin(c.axes, ","), "] ",
            std::string(DTypeName(dtype)), " ", testing::PlacementName(placement));
        kernels::MaxCalibrator cpu(c.axes);
        absl::StatusOr<std::unique_ptr<MaxCalibrator>> gpu =
            MaxCalibrator::Create(TestContext(), c.axes);
        ASSERT_TRUE(gpu.ok()) << gpu.status();
        for (int batch = 0; batch < 3; ++batch) {
          const RawBatch raw = RandomBatch(dtype, Elements(c.shape), ++seed,
                                           {.scale = static_cast<float>(1 << (2 * batch))});
          const auto cpu_stats = cpu.Collect(raw.decoded, c.shape);
          PlacedBatch placed(raw, placement);
          const auto gpu_stats = (*gpu)->Collect(placed.ref(), c.shape);
          ASSERT_TRUE(cpu_stats.ok()) << cpu_stats.status();
          ASSERT_TRUE(gpu_stats.ok()) << what << ": " << gpu_stats.status();
          EXPECT_EQ(gpu_stats->elements, cpu_stats->elements) << what;
          EXPECT_EQ(gpu_stats->nonfinite, cpu_stats->nonfinite) << what;
          ExpectSameAmax(cpu, **gpu, absl::StrCat(what, " after batch ", batch));
        }
      }
    }
  }
}

TEST(MaxCalibrator, LargeBatchesThroughSmallStagingPieces) {
  QCAL_REQUIRE_GPU();
  const std::vector<int64_t> shape = {96, 3, 101, 103};  // ~3M values, many 64 KiB pieces
  for (const std::vector<int>& axes : {std::vector<int>{}, {0}, {1}, {3}}) {
    for (const DType dtype : {DType::kFloat32, DType::kFloat16}) {
      kernels::MaxCalibrator cpu(axes);
      auto gpu = MaxCalibrator::Create(testing::SmallStageContext(), axes);
      ASSERT_TRUE(gpu.ok());
      const RawBatch raw = RandomBatch(dtype, Elements(shape), 7 + axes.size());
      ASSERT_TRUE(cpu.Collect(raw.decoded, shape).ok());
      const auto stats = (*gpu)->Collect(raw.host_ref(), shape);
      ASSERT_TRUE(stats.ok()) << stats.status();
      ExpectSameAmax(cpu, **gpu,
                     absl::StrCat("axes ", axes.size(), " ", std::string(DTypeName(dtype))));
    }
  }
}

TEST(MaxCalibrator, Size2To26PerChannel) {
  QCAL_REQUIRE_GPU();
  const std::vector<int64_t> shape = {64, 1024, 1024};  // 2^26 values, channel axis 0
  const RawBatch raw = RandomBatch(DType::kFloat32, Elements(shape), 2026);
  for (const int axis : {0, 2}) {
    kernels::MaxCalibrator cpu(axis);
    auto gpu = MaxCalibrator::Create(TestContext(), {axis});
    ASSERT_TRUE(gpu.ok());
    ASSERT_TRUE(cpu.Collect(raw.decoded, shape).ok());
    PlacedBatch placed(raw, Placement::kDevice);
    ASSERT_TRUE((*gpu)->Collect(placed.ref(), shape).ok());
    ExpectSameAmax(cpu, **gpu, absl::StrCat("2^26 axis ", axis));
  }
}

TEST(MaxCalibrator, RefusesWhatTheCpuRefusesAndKeepsItsState) {
  QCAL_REQUIRE_GPU();
  kernels::MaxCalibrator cpu(0);
  auto gpu = MaxCalibrator::Create(TestContext(), {0});
  ASSERT_TRUE(gpu.ok());
  const std::vector<float> x = {1, -2, 3, -4, 5, -6};
  const std::vector<int64_t> shape = {3, 2};
  ASSERT_TRUE(cpu.Collect(x, shape).ok());
  ASSERT_TRUE((*gpu)->Collect(x, shape).ok());
  struct Bad {
    std::vector<float> values;
    std::vector<int64_t> shape;
  };
  const Bad bad[] = {
      {{1, 2, 3}, {2, 2}},        // size does not match the shape
      {{}, {0, 2}},               // empty
      {{1, 2, 3, 4}, {4}},        // ok rank, but 4 channels where there were 3
      {{1, 2}, {-1, -2}},         // negative dimensions
      {{1, 2, 3, 4, 5, 6}, {6}},  // 6 channels
  };
  for (const Bad& b : bad) {
    const auto want = cpu.Collect(b.values, b.shape);
    const auto got = (*gpu)->Collect(b.values, b.shape);
    ASSERT_FALSE(want.ok());
    EXPECT_EQ(got.status().code(), want.status().code());
    EXPECT_EQ(got.status().message(), want.status().message());
  }
  ExpectSameAmax(cpu, **gpu, "after refusals");
  auto scalar_axis = MaxCalibrator::Create(TestContext(), {1});
  ASSERT_TRUE(scalar_axis.ok());
  const float one = 1.0f;
  const std::vector<int64_t> rank0 = {};
  EXPECT_EQ((*scalar_axis)->Collect(std::span<const float>(&one, 1), rank0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*scalar_axis)->empty());
  (*gpu)->Reset();
  EXPECT_TRUE((*gpu)->empty());
  EXPECT_TRUE((*gpu)->amax()->empty());
}

}  // namespace
}  // namespace qcal::kernels::cuda
