// cuda::Histogram in the mergeable layout against its CPU twin: the same canonical state (counts,
// exponent, edges, max, total, zeros) after every batch and every merged state, for every dtype
// and memory; and the reference layout's state out and back in.
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_testing.h"
#include "kernels/cuda/histogram.h"
#include "kernels/histogram.h"
#include "kernels/mergeable_histogram.h"

namespace qcal::kernels::cuda {
namespace {

using testing::kAllDTypes;
using testing::PlacedBatch;
using testing::Placement;
using testing::RandomBatch;
using testing::RandomOptions;
using testing::RawBatch;
using testing::TestContext;

kernels::Histogram::Options Mergeable(int num_bins, bool skip_zeros = false) {
  return {.num_bins = num_bins, .skip_zeros = skip_zeros, .layout = HistogramLayout::kMergeable};
}

void ExpectSameState(const kernels::Histogram& cpu, const Histogram& gpu, const std::string& what) {
  const absl::StatusOr<MergeableState> want = cpu.ExportMergeable();
  const absl::StatusOr<MergeableState> got = gpu.ExportMergeable();
  ASSERT_TRUE(want.ok() && got.ok()) << what << ": " << got.status();
  ASSERT_EQ(got->exponent, want->exponent) << what;
  ASSERT_EQ(got->counts.size(), want->counts.size()) << what;
  for (size_t b = 0; b < want->counts.size(); ++b) {
    ASSERT_EQ(got->counts[b], want->counts[b]) << what << ": bin " << b;
  }
  EXPECT_EQ(std::bit_cast<uint32_t>(got->abs_max), std::bit_cast<uint32_t>(want->abs_max)) << what;
  EXPECT_EQ(got->zeros, want->zeros) << what;
  ASSERT_EQ(gpu.Edges().size(), cpu.Edges().size()) << what;
  for (size_t e = 0; e < cpu.Edges().size(); ++e) {
    ASSERT_EQ(std::bit_cast<uint32_t>(gpu.Edges()[e]), std::bit_cast<uint32_t>(cpu.Edges()[e]))
        << what << ": edge " << e;
  }
  EXPECT_EQ(gpu.total(), cpu.total()) << what;
  EXPECT_EQ(gpu.pending_zeros(), cpu.pending_zeros()) << what;
  EXPECT_EQ(gpu.empty(), cpu.empty()) << what;
  EXPECT_TRUE(ValidateMergeableState(*got, cpu.options().num_bins).ok()) << what;
}

void CollectBoth(kernels::Histogram& cpu, Histogram& gpu, const RawBatch& batch,
                 Placement placement, const std::string& what) {
  const auto want = cpu.Collect(batch.decoded);
  PlacedBatch placed(batch, placement);
  const auto got = gpu.Collect(placed.ref());
  ASSERT_EQ(got.status().code(), want.status().code()) << what << ": gpu " << got.status();
  if (want.ok()) {
    EXPECT_EQ(got->elements, want->elements) << what;
    EXPECT_EQ(got->nonfinite, want->nonfinite) << what;
  }
  ExpectSameState(cpu, gpu, what);
}

struct Step {
  int64_t count;
  RandomOptions options;
};

void RunSequence(const kernels::Histogram::Options& opts, const std::vector<Step>& steps,
                 DType dtype, Placement placement, uint64_t seed) {
  kernels::Histogram cpu(opts);
  auto gpu = Histogram::Create(TestContext(), opts);
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

std::vector<Step> GrowingSteps(int64_t count) {
  const RandomOptions zeros{.nonfinite = 0.2, .zeros = 0.8};
  return {{count / 7 + 1, {.nonfinite = 0.0, .zeros = 1.0}},
          {count, {.scale = 1.0f}},
          {count, {.scale = 0.25f}},
          {count, zeros},
          {count, {.scale = 3.0f}},
          {count, {.scale = 1e-30f}},
          {count, {.scale = 4000.0f}},
          {count / 3 + 1, {.scale = 2.0f}}};
}

TEST(HistogramMergeable, SequencesLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  uint64_t seed = 11000;
  for (const DType dtype : kAllDTypes) {
    for (const Placement placement : testing::kAllPlacements) {
      for (const bool skip_zeros : {false, true}) {
        RunSequence(Mergeable(2048, skip_zeros), GrowingSteps(30011), dtype, placement, seed += 10);
      }
    }
  }
}

TEST(HistogramMergeable, BinCountsAroundTheSharedMemoryLimit) {
  QCAL_REQUIRE_GPU();
  uint64_t seed = 12000;
  // 2 * num_bins bins at most: 6000 stays in shared memory, 6001 and up may not.
  for (const int bins : {1, 2, 7, 128, 6000, 6001, 50000}) {
    RunSequence(Mergeable(bins), GrowingSteps(20000), DType::kFloat32, Placement::kDevice,
                seed += 10);
  }
}

TEST(HistogramMergeable, SubnormalAndHugeMaximaLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  kernels::Histogram cpu(Mergeable(2048));
  auto gpu = Histogram::Create(TestContext(), Mergeable(2048));
  ASSERT_TRUE(gpu.ok());
  const auto batch = [](std::vector<float> v) {
    RawBatch raw;
    raw.dtype = DType::kFloat32;
    raw.count = static_cast<int64_t>(v.size());
    raw.bytes.resize(v.size() * sizeof(float));
    std::memcpy(raw.bytes.data(), v.data(), raw.bytes.size());
    raw.decoded = std::move(v);
    return raw;
  };
  CollectBoth(cpu, **gpu, batch({1e-42f, -0x1p-149f, 3e-43f, 0.0f}), Placement::kPageable, "sub");
  CollectBoth(cpu, **gpu, batch({1.0f, 0x1p-20f, 0.5f}), Placement::kDevice, "normal");
  CollectBoth(cpu, **gpu, batch({FLT_MAX, -3e38f, 1e30f}), Placement::kDevice, "near FLT_MAX");
}

TEST(HistogramMergeable, MergedStatesLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  kernels::Histogram cpu(Mergeable(1024));
  auto gpu = Histogram::Create(TestContext(), Mergeable(1024));
  ASSERT_TRUE(gpu.ok());
  uint64_t seed = 13000;
  for (const float scale : {0.0f, 1.0f, 0.01f, 50.0f, 3.0f}) {
    const RawBatch raw = RandomBatch(DType::kFloat32, 5000, seed++,
                                     scale == 0.0f ? RandomOptions{.nonfinite = 0.0, .zeros = 1.0}
                                                   : RandomOptions{.scale = scale});
    auto part = CountMergeable(raw.decoded, {.num_bins = 1024});
    ASSERT_TRUE(part.ok());
    ASSERT_TRUE(cpu.MergeMergeable(part->state).ok());
    ASSERT_TRUE((*gpu)->MergeMergeable(part->state).ok());
    ExpectSameState(cpu, **gpu, absl::StrCat("merged scale ", scale));
    CollectBoth(cpu, **gpu, RandomBatch(DType::kFloat16, 3001, seed++, {.scale = scale + 0.5f}),
                Placement::kPinned, absl::StrCat("collected after scale ", scale));
  }
  // Refusals leave the state as it was.
  MergeableState bad = *cpu.ExportMergeable();
  bad.exponent += 1;
  EXPECT_EQ((*gpu)->MergeMergeable(bad).code(), absl::StatusCode::kInvalidArgument);
  const uint64_t huge = ~uint64_t{0} - 5;
  const MergeableState overflow{.counts = {}, .abs_max = 0.0f, .zeros = huge};
  EXPECT_EQ((*gpu)->MergeMergeable(overflow).code(), absl::StatusCode::kOutOfRange);
  ExpectSameState(cpu, **gpu, "after refusals");
}

TEST(HistogramMergeable, ReferenceStateRoundTripsAndLayoutsAreChecked) {
  QCAL_REQUIRE_GPU();
  auto gpu = Histogram::Create(TestContext(), {.num_bins = 512});
  ASSERT_TRUE(gpu.ok());
  ASSERT_TRUE((*gpu)->Collect(RandomBatch(DType::kFloat32, 9000, 14000).decoded).ok());
  const auto state = (*gpu)->ExportReference();
  ASSERT_TRUE(state.ok()) << state.status();
  kernels::Histogram cpu({.num_bins = 512});
  ASSERT_TRUE(cpu.RestoreReference(*state).ok());
  auto back = Histogram::Create(TestContext(), {.num_bins = 512});
  ASSERT_TRUE((*back)->RestoreReference(*state).ok());
  EXPECT_EQ(*(*back)->ExportReference(), *state);
  EXPECT_EQ(*cpu.ExportReference(), *state);
  EXPECT_EQ((*gpu)->ExportMergeable().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*gpu)->MergeMergeable({}).code(), absl::StatusCode::kFailedPrecondition);
  auto mergeable = Histogram::Create(TestContext(), Mergeable(512));
  EXPECT_EQ((*mergeable)->ExportReference().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*mergeable)->RestoreReference(*state).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*mergeable)->Grow(1.0f).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace qcal::kernels::cuda
