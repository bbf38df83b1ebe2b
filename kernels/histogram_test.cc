#include "kernels/histogram.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

using ::testing::HasSubstr;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Histogram Make(int num_bins = 2048, bool skip_zeros = false, int64_t max_bins = 1 << 24) {
  auto h =
      Histogram::Create({.num_bins = num_bins, .skip_zeros = skip_zeros, .max_bins = max_bins});
  EXPECT_TRUE(h.ok()) << h.status();
  return *std::move(h);
}

// Counts of the bins listed; every other bin must hold 0.
void ExpectCounts(const Histogram& h, size_t bins,
                  const std::vector<std::pair<size_t, uint64_t>>& nonzero) {
  ASSERT_EQ(h.Counts().size(), bins);
  ASSERT_EQ(h.Edges().size(), bins + 1);
  std::vector<uint64_t> want(bins, 0);
  for (const auto& [bin, count] : nonzero) want[bin] = count;
  for (size_t b = 0; b < bins; ++b) ASSERT_EQ(h.Counts()[b], want[b]) << "bin " << b;
}

TEST(HistogramTest, FirstBatchSetsLinspaceEdgesAndBinsAbsoluteValues) {
  Histogram h = Make();
  EXPECT_TRUE(h.empty());
  const auto stats = h.Collect(std::vector<float>{0.5f, 1.0f, -1.0f, 2.0f});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->elements, 4);
  EXPECT_EQ(stats->nonfinite, 0);
  // Width 2/2048; 0.5 -> bin 512, |+-1| -> 1024, the max 2 -> 2048 clamped to 2047.
  ExpectCounts(h, 2048, {{512, 1}, {1024, 2}, {2047, 1}});
  EXPECT_EQ(h.Edges()[1], 2.0f / 2048);
  EXPECT_EQ(h.Edges().back(), 2.0f);
  EXPECT_EQ(h.total(), 4u);
  EXPECT_EQ(h.abs_max(), 2.0f);
  EXPECT_FALSE(h.empty());
}

TEST(HistogramTest, LaterBatchInsideTheRangeBinsAgainstTheLastEdge) {
  Histogram h = Make();
  ASSERT_TRUE(h.Collect(std::vector<float>{2.0f}).ok());
  // float(0.7 / 2) * 2048 = 716.8 -> bin 716.
  ASSERT_TRUE(h.Collect(std::vector<float>{0.7f, -0.0f}).ok());
  ExpectCounts(h, 2048, {{0, 1}, {716, 1}, {2047, 1}});
  EXPECT_EQ(h.abs_max(), 2.0f);
}

TEST(HistogramTest, LargerMaxAppendsBinsOfTheSameWidth) {
  Histogram h = Make();
  ASSERT_TRUE(h.Collect(std::vector<float>{0.5f, 2.0f}).ok());
  // Width 2^-10: 3.0 needs ceil((3 + w) / w) = 3073 edges, earlier counts keep their bins.
  ASSERT_TRUE(h.Collect(std::vector<float>{3.0f, 1.0f}).ok());
  ExpectCounts(h, 3072, {{512, 1}, {1024, 1}, {2047, 1}, {3071, 1}});
  EXPECT_EQ(h.Edges()[1], 0x1p-10f);
  EXPECT_EQ(h.Edges()[2048], 2.0f);
  EXPECT_EQ(h.Edges().back(), 3.0f);
  EXPECT_EQ(h.total(), 4u);
  EXPECT_EQ(h.abs_max(), 3.0f);
}

TEST(HistogramTest, AllZeroFirstBatchIsHeldThenRebinned) {
  // Field case: the reference fails once real data follows an all-zero first batch.
  Histogram h = Make();
  ASSERT_TRUE(h.Collect(std::vector<float>(5, 0.0f)).ok());
  EXPECT_TRUE(h.Counts().empty());
  EXPECT_TRUE(h.Edges().empty());
  EXPECT_EQ(h.total(), 5u);
  EXPECT_EQ(h.pending_zeros(), 5u);
  EXPECT_FALSE(h.empty());
  ASSERT_TRUE(h.Collect(std::vector<float>{-0.0f, 0.0f}).ok());
  EXPECT_EQ(h.pending_zeros(), 7u);
  ASSERT_TRUE(h.Collect(std::vector<float>{4.0f, 1.0f}).ok());
  ExpectCounts(h, 2048, {{0, 7}, {512, 1}, {2047, 1}});
  EXPECT_EQ(h.Edges().back(), 4.0f);
  EXPECT_EQ(h.total(), 9u);
  EXPECT_EQ(h.pending_zeros(), 0u);
}

TEST(HistogramTest, SkipZerosLeavesZerosOut) {
  Histogram h = Make(2048, /*skip_zeros=*/true);
  ASSERT_TRUE(h.Collect(std::vector<float>{0.0f, -0.0f}).ok());  // nothing left: not an error
  EXPECT_EQ(h.total(), 0u);
  EXPECT_FALSE(h.empty());
  ASSERT_TRUE(h.Collect(std::vector<float>{0.0f, 1.0f, 0.0f}).ok());
  ExpectCounts(h, 2048, {{2047, 1}});
  EXPECT_EQ(h.total(), 1u);
}

TEST(HistogramTest, NanAndInfAreCountedAndLeftOut) {
  // Field case: amax stays finite and the count is reported.
  Histogram h = Make();
  auto stats = h.Collect(std::vector<float>{kNaN, 1.0f, kInf, -kInf, -2.0f});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->nonfinite, 3);
  ExpectCounts(h, 2048, {{1024, 1}, {2047, 1}});
  EXPECT_EQ(h.abs_max(), 2.0f);
  // In a later batch neither grows the range nor lands in a bin.
  stats = h.Collect(std::vector<float>{kInf, 0.5f, kNaN});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->nonfinite, 2);
  ExpectCounts(h, 2048, {{512, 1}, {1024, 1}, {2047, 1}});
  EXPECT_EQ(h.Edges().back(), 2.0f);
  EXPECT_EQ(h.total(), 3u);
}

TEST(HistogramTest, OnlyNonFiniteValuesCollectNothing) {
  Histogram h = Make();
  const auto stats = h.Collect(std::vector<float>{kNaN, kInf});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->nonfinite, 2);
  EXPECT_EQ(h.total(), 0u);
  EXPECT_TRUE(h.Counts().empty());
}

TEST(HistogramTest, OneBinHoldsMoreThan2To24ValuesExactly) {
  // Field case: float counts would stop at 2^24 (16777216 + 1 == 16777216 in float32).
  Histogram h = Make();
  const std::vector<float> x((size_t{1} << 24) + 3, 1.5f);
  ASSERT_TRUE(h.Collect(x).ok());
  ExpectCounts(h, 2048, {{2047, 16777219}});
  ASSERT_TRUE(h.Collect(std::vector<float>{1.5f}).ok());
  EXPECT_EQ(h.Counts()[2047], 16777220u);
  EXPECT_EQ(h.total(), 16777220u);
}

TEST(HistogramTest, EmptyBatchIsRefusedAndChangesNothing) {
  Histogram h = Make();
  ASSERT_TRUE(h.Collect(std::vector<float>{1.0f}).ok());
  const auto stats = h.Collect({});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument);
  ExpectCounts(h, 2048, {{2047, 1}});
}

TEST(HistogramTest, GrowthPastMaxBinsIsRefusedAndChangesNothing) {
  Histogram h = Make(/*num_bins=*/4, false, /*max_bins=*/8);
  ASSERT_TRUE(h.Collect(std::vector<float>{1.0f}).ok());  // width 0.25
  const auto stats = h.Collect(std::vector<float>{0.5f, 100.0f});
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(stats.status().message(), HasSubstr("max_bins"));
  ExpectCounts(h, 4, {{3, 1}});
  EXPECT_EQ(h.total(), 1u);
  EXPECT_EQ(h.abs_max(), 1.0f);
  // ceil((1.9 + 0.25) / 0.25) = 9 edges: 8 bins are still allowed.
  ASSERT_TRUE(h.Collect(std::vector<float>{1.9f}).ok());
  ExpectCounts(h, 8, {{3, 1}, {7, 1}});
}

TEST(HistogramTest, CreateRefusesBadOptions) {
  EXPECT_EQ(Histogram::Create({.axis = 0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::Create({.num_bins = 0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::Create({.num_bins = 16, .max_bins = 8}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::Create({.max_bins = (int64_t{1} << 24) + 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Built directly, bad options surface on first use.
  Histogram bad({.num_bins = -1});
  EXPECT_EQ(bad.Collect(std::vector<float>{1.0f}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HistogramTest, GrowExtendsTheRange) {
  Histogram h = Make(4);
  ASSERT_TRUE(h.Grow(0.0f).ok());  // nothing to do without a range
  EXPECT_TRUE(h.Counts().empty());
  ASSERT_TRUE(h.Grow(2.0f).ok());  // the first range, as a first batch with max 2 would set
  ExpectCounts(h, 4, {});
  EXPECT_EQ(h.Edges().back(), 2.0f);
  ASSERT_TRUE(h.Grow(1.0f).ok());  // covered: no change
  ExpectCounts(h, 4, {});
  ASSERT_TRUE(h.Collect(std::vector<float>{1.9f}).ok());
  ASSERT_TRUE(h.Grow(3.1f).ok());  // ceil((3.1 + 0.5) / 0.5) = 8 edges, up to 3.5
  ExpectCounts(h, 7, {{3, 1}});
  EXPECT_EQ(h.Edges().back(), 3.5f);
  EXPECT_EQ(h.Grow(kNaN).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.Grow(-1.0f).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.Grow(1e30f).code(), absl::StatusCode::kResourceExhausted);
  ExpectCounts(h, 7, {{3, 1}});
}

TEST(HistogramTest, MergeAddsHistogramsOfTheSameWidth) {
  Histogram a = Make();
  ASSERT_TRUE(a.Collect(std::vector<float>{2.0f, 1.0f}).ok());
  Histogram b = Make();
  ASSERT_TRUE(b.Collect(std::vector<float>{2.0f}).ok());
  ASSERT_TRUE(b.Collect(std::vector<float>{3.0f, 0.5f}).ok());  // grows b to 3072 bins
  ASSERT_TRUE(a.Merge(b).ok());
  ExpectCounts(a, 3072, {{512, 1}, {1024, 1}, {2047, 2}, {3071, 1}});
  EXPECT_EQ(a.Edges().back(), 3.0f);
  EXPECT_EQ(a.total(), 5u);
  EXPECT_EQ(a.abs_max(), 3.0f);

  Histogram zeros = Make();
  ASSERT_TRUE(zeros.Collect(std::vector<float>(3, 0.0f)).ok());
  ASSERT_TRUE(a.Merge(zeros).ok());  // held zeros land in bin 0
  EXPECT_EQ(a.Counts()[0], 3u);
  ASSERT_TRUE(zeros.Merge(b).ok());  // and the other way round
  ExpectCounts(zeros, 3072, {{0, 3}, {512, 1}, {2047, 1}, {3071, 1}});
  EXPECT_EQ(zeros.total(), 6u);

  Histogram other_width = Make();
  ASSERT_TRUE(other_width.Collect(std::vector<float>{5.0f}).ok());
  EXPECT_EQ(a.Merge(other_width).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(a.total(), 8u);
}

TEST(HistogramTest, LargeBatchesCountLikeTheReferenceFormula) {
  // Enough values to split across cores, with runs of zeros (counted apart from the other
  // bins) and of the max, compared with the formula applied one by one.
  const size_t n = 3'000'001;
  std::vector<float> x(n);
  uint32_t state = 12345;
  for (size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    x[i] = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 10.0f;
    if (i % 3 == 0) x[i] = (i % 2 == 0) ? 0.0f : -0.0f;
    if (i % 1000 < 50) x[i] = -6.0f;
  }
  x[77] = kNaN;
  x[n - 2] = kInf;
  for (const bool skip_zeros : {false, true}) {
    Histogram h = Make(1000, skip_zeros);
    const auto stats = h.Collect(x);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->nonfinite, 2);
    std::vector<uint64_t> want(1000, 0);
    uint64_t total = 0;
    for (const float v : x) {
      if (!std::isfinite(v) || (skip_zeros && v == 0.0f)) continue;
      const float t = (std::fabs(v) / 6.0f) * 1000.0f;
      want[std::min<int64_t>(static_cast<int64_t>(t), 999)]++;
      ++total;
    }
    ASSERT_EQ(h.Counts().size(), 1000u);
    for (size_t b = 0; b < want.size(); ++b) {
      ASSERT_EQ(h.Counts()[b], want[b]) << "bin " << b << " skip_zeros " << skip_zeros;
    }
    EXPECT_EQ(h.total(), total);
    EXPECT_EQ(h.abs_max(), 6.0f);
  }
}

TEST(HistogramTest, ResetForgetsEverything) {
  Histogram h = Make();
  ASSERT_TRUE(h.Collect(std::vector<float>{1.0f, 0.0f}).ok());
  h.Reset();
  EXPECT_TRUE(h.empty());
  EXPECT_TRUE(h.Counts().empty());
  EXPECT_EQ(h.total(), 0u);
  EXPECT_EQ(h.abs_max(), 0.0f);
}

}  // namespace
}  // namespace qcal::kernels
