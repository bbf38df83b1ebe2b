// cuda::Histogram against its CPU twin kernels::Histogram: the same counts, edges, max, total and
// pending zeros after every batch of sequences that start, grow and coarsen ranges, for every
// dtype and memory, shared and global bin counters, and several threads at once.
#include "kernels/cuda/histogram.h"

#include <bit>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_testing.h"
#include "kernels/histogram.h"

namespace qcal::kernels::cuda {
namespace {

using testing::kAllDTypes;
using testing::PlacedBatch;
using testing::Placement;
using testing::RandomBatch;
using testing::RandomOptions;
using testing::RawBatch;
using testing::TestContext;

void ExpectSameHistogram(const kernels::Histogram& cpu, const Histogram& gpu,
                         const std::string& what) {
  const absl::StatusOr<std::vector<uint64_t>> counts = gpu.Counts();
  ASSERT_TRUE(counts.ok()) << what << ": " << counts.status();
  ASSERT_EQ(counts->size(), cpu.Counts().size()) << what;
  for (size_t b = 0; b < counts->size(); ++b) {
    ASSERT_EQ((*counts)[b], cpu.Counts()[b]) << what << ": bin " << b << " of " << counts->size();
  }
  ASSERT_EQ(gpu.Edges().size(), cpu.Edges().size()) << what;
  for (size_t e = 0; e < gpu.Edges().size(); ++e) {
    ASSERT_EQ(std::bit_cast<uint32_t>(gpu.Edges()[e]), std::bit_cast<uint32_t>(cpu.Edges()[e]))
        << what << ": edge " << e;
  }
  EXPECT_EQ(std::bit_cast<uint32_t>(gpu.abs_max()), std::bit_cast<uint32_t>(cpu.abs_max())) << what;
  EXPECT_EQ(gpu.total(), cpu.total()) << what;
  EXPECT_EQ(gpu.pending_zeros(), cpu.pending_zeros()) << what;
  EXPECT_EQ(gpu.empty(), cpu.empty()) << what;
  EXPECT_EQ(gpu.num_bins(), static_cast<int64_t>(cpu.Counts().size())) << what;
}

// Feeds the same batch to both and compares the outcome and the state.
void CollectBoth(kernels::Histogram& cpu, Histogram& gpu, const RawBatch& batch,
                 Placement placement, const std::string& what) {
  const auto want = cpu.Collect(batch.decoded);
  PlacedBatch placed(batch, placement);
  const auto got = gpu.Collect(placed.ref());
  ASSERT_EQ(got.status().code(), want.status().code())
      << what << ": gpu " << got.status() << ", cpu " << want.status();
  if (want.ok()) {
    EXPECT_EQ(got->elements, want->elements) << what;
    EXPECT_EQ(got->nonfinite, want->nonfinite) << what;
  } else {
    EXPECT_EQ(got.status().message(), want.status().message()) << what;
  }
  ExpectSameHistogram(cpu, gpu, what);
}

struct Step {
  int64_t count;
  RandomOptions options;
};

void RunSequence(const std::shared_ptr<Context>& context, const kernels::Histogram::Options& opts,
                 const std::vector<Step>& steps, DType dtype, Placement placement, uint64_t seed) {
  kernels::Histogram cpu(opts);
  auto gpu = Histogram::Create(context, opts);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  for (size_t s = 0; s < steps.size(); ++s) {
    const RawBatch batch = RandomBatch(dtype, steps[s].count, seed + s, steps[s].options);
    CollectBoth(
        cpu, **gpu, batch, placement,
        absl::StrCat(std::string(DTypeName(dtype)), " ", testing::PlacementName(placement),
                     " bins ", opts.num_bins, opts.skip_zeros ? " skip_zeros" : "", " step ", s));
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// Inside the range, shrinking, growing a little and a lot, then inside again.
std::vector<Step> GrowingSteps(int64_t count) {
  return {{count, {.scale = 1.0f}}, {count, {.scale = 0.25f}}, {count, {.scale = 3.0f}},
          {count, {.scale = 3.0f}}, {count, {.scale = 40.0f}}, {count / 3 + 1, {.scale = 2.0f}}};
}

TEST(Histogram, SequencesLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  uint64_t seed = 1000;
  for (const DType dtype : kAllDTypes) {
    for (const Placement placement : testing::kAllPlacements) {
      for (const bool skip_zeros : {false, true}) {
        RunSequence(TestContext(), {.num_bins = 2048, .skip_zeros = skip_zeros},
                    GrowingSteps(30011), dtype, placement, seed += 10);
      }
    }
  }
}

TEST(Histogram, BinCountsAroundTheSharedMemoryLimit) {
  QCAL_REQUIRE_GPU();
  uint64_t seed = 2000;
  for (const int bins : {1, 2, 7, 128, 12000, 12001, 50000}) {  // 12000: the shared limit
    RunSequence(TestContext(), {.num_bins = bins}, GrowingSteps(20000), DType::kFloat32,
                Placement::kDevice, seed += 10);
  }
}

TEST(Histogram, SizesFromOneUpAndManyStagingPieces) {
  QCAL_REQUIRE_GPU();
  uint64_t seed = 3000;
  for (const int64_t n : {1, 2, 3, 9, 33, 257, 4099, 65537, (1 << 20) + 7}) {
    for (const DType dtype : {DType::kFloat32, DType::kBFloat16}) {
      RunSequence(testing::SmallStageContext(), {.num_bins = 2048}, {{n, {}}, {n, {.scale = 8.0f}}},
                  dtype, Placement::kPageable, seed += 10);
      RunSequence(TestContext(), {.num_bins = 2048}, {{n, {}}, {n, {.scale = 8.0f}}}, dtype,
                  Placement::kDeviceUnaligned, seed += 10);
    }
  }
}

TEST(Histogram, ZerosAndNonFiniteValuesBeforeAnyRange) {
  QCAL_REQUIRE_GPU();
  const RandomOptions zeros{.nonfinite = 0.0, .zeros = 1.0};
  const RandomOptions bad{.nonfinite = 1.0, .zeros = 0.0};
  const RandomOptions mixed{.nonfinite = 0.3, .zeros = 0.6};
  for (const bool skip_zeros : {false, true}) {
    RunSequence(TestContext(), {.num_bins = 2048, .skip_zeros = skip_zeros},
                {{1000, zeros}, {10, bad}, {3000, mixed}, {5000, {}}, {100, zeros}},
                DType::kFloat16, Placement::kPinned, 4000 + skip_zeros);
  }
}

TEST(Histogram, GrowthBeyondMaxBinsCoarsensLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  const kernels::Histogram::Options opts{.num_bins = 100, .max_bins = 1000};
  RunSequence(TestContext(), opts,
              {{5000, {.nonfinite = 0, .scale = 1.0f}},
               {5000, {.nonfinite = 0, .scale = 1000.0f}},  // needs ~10^5 bins: coarsened
               {5000, {.nonfinite = 0, .scale = 5.0f}},
               {5000, {.nonfinite = 0, .scale = 3000.0f}}},  // within max_bins again
              DType::kFloat32, Placement::kPageable, 5000);
}

TEST(Histogram, TinyFirstBatchThenNormalDataLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  // A first batch of max ~1e-6, then data of max ~10: ~2e10 bins of the first width, past the
  // default max_bins, so coarsened to at most num_bins (2048) bins.
  RunSequence(TestContext(), {.num_bins = 2048},
              {{3000, {.nonfinite = 0, .scale = 1e-6f}},
               {30011, {.scale = 10.0f}},
               {30011, {.scale = 1.0f}}},
              DType::kFloat32, Placement::kDevice, 5100);
}

TEST(Histogram, GrowLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  kernels::Histogram cpu({.num_bins = 64});
  auto gpu = Histogram::Create(TestContext(), {.num_bins = 64});
  ASSERT_TRUE(gpu.ok());
  const RawBatch zeros = RandomBatch(DType::kFloat32, 10, 1, {.nonfinite = 0, .zeros = 1.0});
  CollectBoth(cpu, **gpu, zeros, Placement::kPageable, "zeros");
  for (const float new_max : {0.0f, 3.0f, 2.0f, 7.5f, 1000.0f, 1e30f}) {  // 1e30: coarsens
    ASSERT_EQ((*gpu)->Grow(new_max).code(), cpu.Grow(new_max).code()) << new_max;
    ExpectSameHistogram(cpu, **gpu, absl::StrCat("grow ", new_max));
  }
  EXPECT_EQ((*gpu)->Grow(-1.0f).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*gpu)->Grow(NAN).code(), absl::StatusCode::kInvalidArgument);
  CollectBoth(cpu, **gpu, RandomBatch(DType::kFloat32, 999, 2), Placement::kDevice, "after");
}

TEST(Histogram, OptionsAndBatchesTheCpuRefuses) {
  QCAL_REQUIRE_GPU();
  EXPECT_EQ(Histogram::Create(TestContext(), {.num_bins = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::Create(TestContext(), {.axis = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto gpu = Histogram::Create(TestContext(), {});
  ASSERT_TRUE(gpu.ok());
  const auto empty = (*gpu)->Collect(std::span<const float>());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*gpu)->empty());
  EXPECT_TRUE((*gpu)->Counts()->empty());
}

TEST(Histogram, ThreadsShareOneContext) {
  QCAL_REQUIRE_GPU();
  // Four histograms on a context that lends two sets of staging buffers at a time.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      RunSequence(testing::SmallStageContext(), {.num_bins = 2048}, GrowingSteps(200003),
                  t % 2 == 0 ? DType::kFloat32 : DType::kFloat16, Placement::kPageable,
                  6000 + 10 * t);
    });
  }
  for (std::thread& thread : threads) thread.join();
}

TEST(Histogram, Size2To26) {
  QCAL_REQUIRE_GPU();
  RunSequence(TestContext(), {.num_bins = 2048},
              {{int64_t{1} << 26, {.scale = 1.0f}}, {int64_t{1} << 26, {.scale = 2.0f}}},
              DType::kFloat16, Placement::kDevice, 7000);
  RunSequence(TestContext(), {.num_bins = 2048}, {{(int64_t{1} << 26) + 1, {.scale = 1.0f}}},
              DType::kFloat32, Placement::kPageable, 7100);
}

TEST(Histogram, ResetDropsTheState) {
  QCAL_REQUIRE_GPU();
  auto gpu = Histogram::Create(TestContext(), {});
  ASSERT_TRUE(gpu.ok());
  const std::vector<float> x = {1.0f, 2.0f, 0.0f};
  ASSERT_TRUE((*gpu)->Collect(x).ok());
  EXPECT_EQ((*gpu)->total(), 3u);
  (*gpu)->Reset();
  EXPECT_TRUE((*gpu)->empty());
  EXPECT_EQ((*gpu)->num_bins(), 0);
  EXPECT_TRUE((*gpu)->DeviceCounts().empty());
}

}  // namespace
}  // namespace qcal::kernels::cuda
