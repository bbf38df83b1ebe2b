#include "kernels/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/histogram_amax.h"

namespace qcal::kernels {
namespace {

using ::testing::HasSubstr;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Histogram Make(int num_bins = 2048, bool skip_zeros = false,
               int64_t max_bins = Histogram::kDefaultMaxBins) {
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

TEST(HistogramTest, GrowthPastMaxBinsMergesAdjacentBins) {
  Histogram h = Make(/*num_bins=*/4, false, /*max_bins=*/8);
  ASSERT_TRUE(h.Collect(std::vector<float>{1.0f}).ok());  // width 0.25, 1.0 in bin 3
  // 100 needs ceil(100 / 0.25) = 400 bins, past max_bins 8: the bins merge down to num_bins 4,
  // 128 at a time (width 32; 64 at a time, width 16, would leave ceil(100 / 16) = 7 > 4 bins):
  // ceil(100 / 32) = 4 bins up to 128. Old bin 3 goes to bin 3 / 128 = 0; 0.5 lands in bin 0,
  // 100 in bin trunc(100 / 128 * 4) = 3.
  const auto stats = h.Collect(std::vector<float>{0.5f, 100.0f});
  ASSERT_TRUE(stats.ok()) << stats.status();
  ExpectCounts(h, 4, {{0, 2}, {3, 1}});
  EXPECT_EQ(h.Edges()[1], 32.0f);
  EXPECT_EQ(h.Edges()[2], 64.0f);
  EXPECT_EQ(h.Edges().back(), 128.0f);
  EXPECT_EQ(h.total(), 3u);
  EXPECT_EQ(h.abs_max(), 100.0f);
  // Later batches bin against the coarse range, and growth within max_bins appends bins of
  // width 32 as the reference does: 200 needs ceil((200 + 32) / 32) = 8 edges, 7 bins up to
  // 224; 40 lands in bin trunc(40 / 224 * 7) = 1, 200 in trunc(200 / 224 * 7) = 6.
  ASSERT_TRUE(h.Collect(std::vector<float>{1.9f, 40.0f, -200.0f}).ok());
  ExpectCounts(h, 7, {{0, 3}, {1, 1}, {3, 1}, {6, 1}});
  EXPECT_EQ(h.Edges()[1], 32.0f);
  EXPECT_EQ(h.Edges().back(), 224.0f);
  EXPECT_EQ(h.total(), 6u);
  EXPECT_EQ(h.abs_max(), 200.0f);
}

TEST(HistogramTest, TinyFirstBatchThenNormalDataCoarsens) {
  // Field case (hostile tester): a first batch of max 1e-6 sets the width 1e-6 / 2048, and data
  // of max 10 then needs ~2e10 bins of it. The reference allocates them (and runs out of
  // memory); qcal merges bins down to num_bins 2048: 2^23 at a time would leave
  // ceil(10 / (4096 * 1e-6)) = 2442 bins, 2^24 at a time (width 8192 * 1e-6, exact) leaves
  // ceil(10 / 0.008192) = 1221 bins up to 1221 * 0.008192 = 10.002432.
  Histogram h = Make();
  ASSERT_TRUE(h.Collect(std::vector<float>{1e-6f, -5e-7f}).ok());  // bins 2047 and 1024
  ASSERT_EQ(h.Edges()[1], 1e-6f / 2048);
  const auto stats = h.Collect(std::vector<float>{10.0f, -7.5f, 2.5f, 0.0f});
  ASSERT_TRUE(stats.ok()) << stats.status();
  const float width = 8192 * 1e-6f;
  EXPECT_EQ(h.Edges()[1], width);
  EXPECT_EQ(h.Edges()[3], static_cast<float>(3.0 * width));
  // Both first-batch bins merge into bin 0 with the zero; 2.5 lands in bin trunc(2.5 / 0.008192)
  // = trunc(305.18) = 305, 7.5 in trunc(915.53) = 915, 10 in trunc(1220.70) = 1220.
  ExpectCounts(h, 1221, {{0, 3}, {305, 1}, {915, 1}, {1220, 1}});
  EXPECT_EQ(h.Edges().back(), static_cast<float>(1221.0 * width));
  EXPECT_EQ(h.total(), 6u);
  EXPECT_EQ(h.abs_max(), 10.0f);

  // Every amax method works on the coarsened histogram.
  const SearchOptions search{.num_bits = 8};
  const auto max = HistogramAmax(h, AmaxMethod::kMax, search);
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->amax, 10.0f);
  // cdf: 0.5 at bin 0, 4/6 at 305 (the first at or above 60%).
  const auto median = HistogramAmax(h, AmaxMethod::kPercentile, search, 60.0);
  ASSERT_TRUE(median.ok()) << median.status();
  EXPECT_EQ(median->index, 305);
  EXPECT_EQ(median->amax, h.Edges()[305]);
  // Spread data inside the coarse range: no growth; entropy and mse find a finite optimum.
  std::vector<float> spread(20000);
  for (size_t i = 0; i < spread.size(); ++i) spread[i] = 10.0f * static_cast<float>(i) / 20000;
  ASSERT_TRUE(h.Collect(spread).ok());
  EXPECT_EQ(h.Counts().size(), 1221u);
  EXPECT_EQ(h.total(), 20006u);
  EXPECT_EQ(h.abs_max(), 10.0f);
  for (const AmaxMethod method : {AmaxMethod::kEntropy, AmaxMethod::kMse}) {
    const auto choice = HistogramAmax(h, method, search);
    ASSERT_TRUE(choice.ok()) << AmaxMethodName(method) << ": " << choice.status();
    EXPECT_GT(choice->amax, 0.0f) << AmaxMethodName(method);
    EXPECT_LE(choice->amax, h.Edges().back()) << AmaxMethodName(method);
    EXPECT_TRUE(std::isfinite(choice->score)) << AmaxMethodName(method);
  }
}

// 1000 values ~ N(0, 1) * 1000 from a fixed seed (Box-Muller on std::mt19937, whose sequence the
// standard fixes).
std::vector<float> WideNormalBatch() {
  std::mt19937 gen(20261129);
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); i += 2) {
    const double u1 = (static_cast<double>(gen()) + 1.0) / 4294967296.0;  // (0, 1]
    const double u2 = static_cast<double>(gen()) / 4294967296.0;
    const double r = 1000.0 * std::sqrt(-2.0 * std::log(u1));
    x[i] = static_cast<float>(r * std::cos(2.0 * std::numbers::pi * u2));
    x[i + 1] = static_cast<float>(r * std::sin(2.0 * std::numbers::pi * u2));
  }
  return x;
}

TEST(HistogramTest, TinyFirstBatchThenWideDataKeepsEntropyInTheData) {
  // Field case (tester): four values of 1e-6, then 1000 values ~ N(0, 1000^2). Coarsening to
  // max_bins (2^20) used to leave ~952000 sparse bins, and entropy (start_bin 128) chose an amax
  // of 0.88, below every real value. Coarsened to num_bins, the histogram is as a first batch of
  // this range would have set it, and entropy chooses an amax in the data.
  Histogram h = Make();
  ASSERT_TRUE(h.Collect(std::vector<float>(4, 1e-6f)).ok());
  const float first_width = h.Edges()[1];
  const std::vector<float> wide = WideNormalBatch();
  ASSERT_TRUE(h.Collect(wide).ok());

  std::vector<float> abs_values(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) abs_values[i] = std::fabs(wide[i]);
  std::sort(abs_values.begin(), abs_values.end());
  const float max_abs = abs_values.back();
  const float median_abs = abs_values[abs_values.size() / 2];

  // Between num_bins / 2 and num_bins bins of a power-of-two multiple of the first width, the
  // last edge the first multiple at or above the max.
  const size_t bins = h.Counts().size();
  ASSERT_LE(bins, 2048u);
  ASSERT_GT(bins, 1024u);
  ASSERT_EQ(h.Edges().size(), bins + 1);
  const float width = h.Edges()[1];
  int exponent = 0;
  EXPECT_EQ(std::frexp(width / first_width, &exponent), 0.5f);
  EXPECT_EQ(std::ldexp(first_width, exponent - 1), width);
  EXPECT_EQ(h.Edges().back(), static_cast<float>(static_cast<double>(bins) * width));
  EXPECT_EQ(bins, 1542u);  // 2^32 merged: width 2^32 * 1e-6 / 2048 = 2.097, max 3232.83
  EXPECT_GE(h.Edges().back(), max_abs);
  EXPECT_LT(h.Edges()[bins - 1], max_abs);

  // Counts exact: the tiny values all merge into bin 0, the wide batch bins against the last
  // edge by the reference's formula.
  std::vector<uint64_t> want(bins, 0);
  want[0] = 4;
  for (const float v : wide) {
    const float t = (std::fabs(v) / h.Edges().back()) * static_cast<float>(bins);
    want[std::min<size_t>(static_cast<size_t>(t), bins - 1)]++;
  }
  for (size_t b = 0; b < bins; ++b) ASSERT_EQ(h.Counts()[b], want[b]) << "bin " << b;
  EXPECT_EQ(h.total(), 1004u);
  EXPECT_EQ(h.abs_max(), max_abs);

  const SearchOptions search{.num_bits = 8};
  const auto max = HistogramAmax(h, AmaxMethod::kMax, search);
  ASSERT_TRUE(max.ok()) << max.status();
  EXPECT_EQ(max->amax, max_abs);
  // Entropy and mse choose an amax in the data's range, above the median |x| (here 1542 bins of
  // 2^32 * 1e-6 / 2048 = 2.097 up to 3233.81; max 3232.83, median |x| 697.69; entropy 3233.81,
  // the last edge, mse 3207.59), within one coarse bin of what they choose for the wide batch
  // alone (2048 bins up to its max: entropy 3232.83, mse 3208.36).
  Histogram alone = Make();
  ASSERT_TRUE(alone.Collect(wide).ok());
  for (const AmaxMethod method : {AmaxMethod::kEntropy, AmaxMethod::kMse}) {
    const auto choice = HistogramAmax(h, method, search);
    ASSERT_TRUE(choice.ok()) << AmaxMethodName(method) << ": " << choice.status();
    EXPECT_GT(choice->amax, median_abs) << AmaxMethodName(method);
    EXPECT_LE(choice->amax, h.Edges().back()) << AmaxMethodName(method);
    EXPECT_LT(choice->amax, max_abs + width) << AmaxMethodName(method);
    const auto reference = HistogramAmax(alone, method, search);
    ASSERT_TRUE(reference.ok()) << AmaxMethodName(method) << ": " << reference.status();
    EXPECT_NEAR(choice->amax, reference->amax, width) << AmaxMethodName(method);
  }
}

TEST(HistogramTest, MaxNearFloatMaxKeepsFiniteEdges) {
  // Field case: a max within one bin width of FLT_MAX; the width's multiple that covers it would
  // overflow, so the last edge is FLT_MAX.
  Histogram h = Make(4, false, 8);
  ASSERT_TRUE(h.Collect(std::vector<float>{1.0f}).ok());
  const float big = std::numeric_limits<float>::max();
  ASSERT_TRUE(h.Collect(std::vector<float>{big, 0.5f}).ok());
  // Coarsened to num_bins 4: width 0.25 * 2^128 = 2^126, ceil(FLT_MAX / 2^126) = 4 bins, whose
  // last edge 2^128 overflows. FLT_MAX lands in the last bin; 0.5 and the old counts (all merged
  // into one) in bin 0.
  EXPECT_EQ(h.Edges()[1], 0x1p126f);
  EXPECT_EQ(h.Edges()[3], 0x1.8p127f);
  EXPECT_EQ(h.Edges().back(), big);
  ExpectCounts(h, 4, {{0, 2}, {3, 1}});
  EXPECT_EQ(h.abs_max(), big);
  ASSERT_TRUE(h.Collect(std::vector<float>{big}).ok());  // covered: no growth
  ExpectCounts(h, 4, {{0, 2}, {3, 2}});
}

TEST(HistogramTest, CreateRefusesBadOptions) {
  EXPECT_EQ(Histogram::Create({.axis = 0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::Create({.num_bins = 0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::Create({.num_bins = 16, .max_bins = 8}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::Create({.max_bins = (int64_t{1} << 24) + 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Histogram::Create({.num_bins = (1 << 24) + 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Unset, max_bins is 2^20, or num_bins when that is larger.
  EXPECT_EQ(Histogram::Options{}.bin_limit(), int64_t{1} << 20);
  EXPECT_EQ(Histogram::Options{.num_bins = 1 << 22}.bin_limit(), int64_t{1} << 22);
  EXPECT_TRUE(Histogram::Create({.num_bins = 1 << 22}).ok());
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
  ExpectCounts(h, 7, {{3, 1}});
  // 1e30 needs 2e30 bins of 0.5, past max_bins: coarsened to num_bins 4, width 2^98 (2^97 would
  // leave ceil(1e30 / 2^97) = 7 bins), ceil(1e30 / 2^98) = ceil(3.16) = 4 bins up to 2^100.
  ASSERT_TRUE(h.Grow(1e30f).ok());
  ExpectCounts(h, 4, {{0, 1}});
  EXPECT_EQ(h.Edges()[1], 0x1p98f);
  EXPECT_EQ(h.Edges().back(), 0x1p100f);
  EXPECT_EQ(h.abs_max(), 1.9f);
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
  ExpectCounts(a, 3072, {{0, 3}, {512, 1}, {1024, 1}, {2047, 2}, {3071, 1}});
}

TEST(HistogramTest, MergeCoarsensToTheCoarserWidthAndToNumBins) {
  // a: width 0.25 (4 bins up to 1); b: coarsened to width 32 (as in GrowthPastMaxBinsMerges..).
  Histogram a = Make(4, false, 8);
  ASSERT_TRUE(a.Collect(std::vector<float>{1.0f, 0.3f}).ok());  // bins 3 and 1
  Histogram b = Make(4, false, 8);
  ASSERT_TRUE(b.Collect(std::vector<float>{1.0f}).ok());
  ASSERT_TRUE(b.Collect(std::vector<float>{100.0f}).ok());  // 4 bins of 32: {0: 1, 3: 1}
  ASSERT_TRUE(a.Merge(b).ok());  // a's bins merge 128 at a time into bin 0
  ExpectCounts(a, 4, {{0, 3}, {3, 1}});
  EXPECT_EQ(a.Edges()[1], 32.0f);
  EXPECT_EQ(a.Edges().back(), 128.0f);
  EXPECT_EQ(a.total(), 4u);
  EXPECT_EQ(a.abs_max(), 100.0f);

  // Same width, more bins than max_bins 4 allows: both merge down to num_bins 2, 4 at a time
  // (width 32, 2 bins), not only pairwise to max_bins' 4 bins.
  Histogram small = Make(2, false, 4);
  ASSERT_TRUE(small.Collect(std::vector<float>{16.0f}).ok());  // 2 bins of 8, 16 in bin 1
  Histogram wide = Make(2, false, 16);
  ASSERT_TRUE(wide.Collect(std::vector<float>{16.0f}).ok());
  // ceil((60 + 8) / 8) = 9 edges: 8 bins of 8, 60 in bin trunc(60 / 64 * 8) = 7.
  ASSERT_TRUE(wide.Collect(std::vector<float>{60.0f}).ok());
  ASSERT_EQ(wide.Counts().size(), 8u);
  ASSERT_TRUE(small.Merge(wide).ok());
  ExpectCounts(small, 2, {{0, 2}, {1, 1}});
  EXPECT_EQ(small.Edges()[1], 32.0f);
  EXPECT_EQ(small.Edges().back(), 64.0f);
  EXPECT_EQ(small.total(), 3u);
  EXPECT_EQ(small.abs_max(), 60.0f);

  // Within max_bins, a merge keeps the finer bins as the reference's growth would.
  Histogram roomy = Make(2, false, 16);
  ASSERT_TRUE(roomy.Collect(std::vector<float>{16.0f}).ok());
  ASSERT_TRUE(roomy.Merge(wide).ok());
  ExpectCounts(roomy, 8, {{1, 2}, {7, 1}});
  EXPECT_EQ(roomy.Edges()[1], 8.0f);
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
