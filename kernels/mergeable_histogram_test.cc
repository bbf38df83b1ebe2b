#include "kernels/mergeable_histogram.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/histogram.h"
#include "kernels/histogram_amax.h"

namespace qcal::kernels {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

MergeableState Count(const std::vector<float>& x, int64_t num_bins = 2048,
                     bool skip_zeros = false) {
  auto batch = CountMergeable(x, {.num_bins = num_bins, .skip_zeros = skip_zeros});
  EXPECT_TRUE(batch.ok()) << batch.status();
  EXPECT_TRUE(ValidateMergeableState(batch->state, num_bins).ok());
  return batch->state;
}

Histogram MakeMergeable(int num_bins = 2048, bool skip_zeros = false) {
  auto h = Histogram::Create(
      {.num_bins = num_bins, .skip_zeros = skip_zeros, .layout = HistogramLayout::kMergeable});
  EXPECT_TRUE(h.ok()) << h.status();
  return *std::move(h);
}

TEST(MergeableHistogramTest, ExponentIsTheSmallestWhoseBinsCoverTheMaxWithinTwiceNumBins) {
  // 1 / 2^-11 = 2048 < 4096 <= 1 / 2^-12: k = -11, 2049 bins.
  EXPECT_EQ(MergeableExponent(1.0f, 2048), -11);
  EXPECT_EQ(MergeableBinCount(1.0f, -11), 2049);
  // Just below 2: 4095.99.. < 4096 still fits at k = -11, 4096 bins.
  EXPECT_EQ(MergeableExponent(std::nextafter(2.0f, 0.0f), 2048), -11);
  EXPECT_EQ(MergeableBinCount(std::nextafter(2.0f, 0.0f), -11), 4096);
  EXPECT_EQ(MergeableExponent(2.0f, 2048), -10);
  EXPECT_EQ(MergeableExponent(3.0f, 1), 1);  // 3 / 2 = 1.5 < 2
  EXPECT_EQ(MergeableBinCount(3.0f, 1), 2);
  EXPECT_EQ(MergeableExponent(1e-42f, 2048), kMinMergeableExponent);
  EXPECT_EQ(MergeableExponent(FLT_MAX, 1), kMaxMergeableExponent);
  EXPECT_EQ(MergeableBinCount(FLT_MAX, kMaxMergeableExponent), 2);
}

TEST(MergeableHistogramTest, EdgesAreMultiplesOfTheWidthWithTheLastClampedToFltMax) {
  EXPECT_THAT(MergeableEdges(-2, 3), ElementsAre(0.0f, 0.25f, 0.5f, 0.75f));
  EXPECT_THAT(MergeableEdges(127, 2), ElementsAre(0.0f, 0x1p127f, FLT_MAX));
  EXPECT_THAT(MergeableEdges(-149, 2), ElementsAre(0.0f, 0x1p-149f, 0x1p-148f));
}

TEST(MergeableHistogramTest, CountsFloorOfAbsOverTheWidth) {
  // m = 2, num_bins 2: k = 0 (2 / 1 < 4), bins [0,1) [1,2) [2,3).
  const MergeableState state = Count({0.5f, 1.0f, -1.0f, 2.0f, 0.0f, -0.0f}, 2);
  EXPECT_EQ(state.exponent, 0);
  EXPECT_THAT(state.counts, ElementsAre(3u, 2u, 1u));
  EXPECT_EQ(state.abs_max, 2.0f);
  EXPECT_EQ(state.zeros, 0u);
  EXPECT_EQ(state.total(), 6u);
}

// The vectorised binning (AVX2 where the CPU has it, a portable loop for tails) against
// floor(|x| / 2^k) in double, one value at a time, over magnitudes from subnormal to FLT_MAX.
TEST(MergeableHistogramTest, BinsAreFloorOfAbsOverTheWidthForEveryValue) {
  std::mt19937 rng(11);
  for (const float scale : {1.0f, 1e-41f, 3e-39f, 1e-20f, 1e20f, 1e38f}) {
    for (const int64_t num_bins : {int64_t{1}, int64_t{5}, int64_t{2048}, int64_t{100000}}) {
      std::vector<float> x(10007);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      for (float& v : x) v = uniform(rng) * scale;
      for (int i = 0; i < 100; ++i) x[rng() % x.size()] = 0.0f;
      x[17] = kNaN;
      x[4000] = -kInf;
      auto batch = CountMergeable(x, {.num_bins = num_bins});
      ASSERT_TRUE(batch.ok());
      const MergeableState& state = batch->state;
      std::vector<uint64_t> want(state.counts.size(), 0);
      float abs_max = 0.0f;
      for (const float v : x) {
        if (!std::isfinite(v)) continue;
        abs_max = std::max(abs_max, std::abs(v));
        want[static_cast<size_t>(std::floor(std::ldexp(double{std::abs(v)}, -state.exponent)))]++;
      }
      EXPECT_EQ(state.abs_max, abs_max);
      EXPECT_EQ(state.exponent, MergeableExponent(abs_max, num_bins));
      ASSERT_EQ(state.counts, want) << "scale " << scale << " num_bins " << num_bins;
      EXPECT_EQ(batch->stats.nonfinite, 2);
    }
  }
}

TEST(MergeableHistogramTest, NonFiniteAreCountedAndLeftOut) {
  auto batch = CountMergeable(std::vector<float>{kNaN, 1.0f, -kInf, kInf, 0.25f}, {.num_bins = 2});
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->stats.elements, 5);
  EXPECT_EQ(batch->stats.nonfinite, 3);
  // m = 1: k = -1 (2 < 4), bins of 0.5: 0.25 -> 0, 1 -> 2.
  EXPECT_EQ(batch->state.exponent, -1);
  EXPECT_THAT(batch->state.counts, ElementsAre(1u, 0u, 1u));
}

TEST(MergeableHistogramTest, AllZeroBatchHoldsZerosOnly) {
  EXPECT_EQ(Count({0.0f, -0.0f, kNaN}), (MergeableState{.zeros = 2}));
  EXPECT_EQ(Count({0.0f, -0.0f}, 2048, /*skip_zeros=*/true), MergeableState{});
}

TEST(MergeableHistogramTest, MergeIsTheStateOfTheUnion) {
  const std::vector<float> a = {0.0f, 0.1f, -0.7f};
  const std::vector<float> b = {3.0f, -2.5f, 0.0f};
  std::vector<float> both = a;
  both.insert(both.end(), b.begin(), b.end());
  MergeableState ab = Count(a, 4);
  ASSERT_TRUE(MergeMergeable(ab, Count(b, 4), 4).ok());
  MergeableState ba = Count(b, 4);
  ASSERT_TRUE(MergeMergeable(ba, Count(a, 4), 4).ok());
  EXPECT_EQ(ab, Count(both, 4));
  EXPECT_EQ(ba, Count(both, 4));
}

TEST(MergeableHistogramTest, HistogramInTheMergeableLayoutHoldsTheCanonicalState) {
  Histogram h = MakeMergeable(4);
  EXPECT_TRUE(h.empty());
  ASSERT_TRUE(h.Collect(std::vector<float>{0.0f, 0.0f}).ok());
  EXPECT_FALSE(h.empty());
  EXPECT_EQ(h.pending_zeros(), 2u);
  EXPECT_TRUE(h.Counts().empty());
  ASSERT_TRUE(h.Collect(std::vector<float>{0.1f, -0.7f}).ok());
  ASSERT_TRUE(h.Collect(std::vector<float>{3.0f, kNaN}).ok());
  const MergeableState want = Count({0.0f, 0.0f, 0.1f, -0.7f, 3.0f}, 4);
  auto state = h.ExportMergeable();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state, want);
  EXPECT_EQ(h.pending_zeros(), 0u);
  EXPECT_EQ(h.total(), 5u);
  EXPECT_EQ(h.abs_max(), 3.0f);
  EXPECT_THAT(std::vector<uint64_t>(h.Counts().begin(), h.Counts().end()),
              ElementsAre(want.counts[0], want.counts[1], want.counts[2], want.counts[3],
                          want.counts[4], want.counts[5], want.counts[6]));
  EXPECT_EQ(std::vector<float>(h.Edges().begin(), h.Edges().end()),
            MergeableEdges(want.exponent, static_cast<int64_t>(want.counts.size())));
}

TEST(MergeableHistogramTest, OverflowIsRefusedAndLeavesTheStateUnchanged) {
  const uint64_t big = uint64_t{1} << 60;
  MergeableState state{.exponent = -1, .counts = {big, big}, .abs_max = 0.5f};
  ASSERT_TRUE(ValidateMergeableState(state, 1).ok());
  for (int i = 0; i < 6; ++i) {  // 2^61 * 7 + ... stays below 2^64
    ASSERT_TRUE(
        MergeMergeable(state, {.exponent = -1, .counts = {big, big}, .abs_max = 0.5f}, 1).ok());
  }
  EXPECT_EQ(state.total(), big * 14);
  const MergeableState before = state;
  const absl::Status status =
      MergeMergeable(state, {.exponent = -1, .counts = {big, big * 2}, .abs_max = 0.5f}, 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(state, before);
}

// amax by every method, as the server computes them from Counts() and Edges().
std::vector<float> AllAmax(const Histogram& h) {
  std::vector<float> amax;
  for (const AmaxMethod method :
       {AmaxMethod::kMax, AmaxMethod::kEntropy, AmaxMethod::kMse, AmaxMethod::kPercentile}) {
    for (const double percentile : {99.9, 99.99}) {
      if (method != AmaxMethod::kPercentile && percentile != 99.9) continue;
      // start_bin 128 unless the histogram has fewer bins (entropy needs start_bin <= bins,
      // mse start_bin < bins).
      const int bins = static_cast<int>(h.Counts().size());
      const SearchOptions search{.num_bits = 8, .start_bin = std::max(1, std::min(128, bins - 1))};
      auto choice = HistogramAmax(h, method, search, percentile);
      EXPECT_TRUE(choice.ok()) << choice.status();
      amax.push_back(choice.ok() ? choice->amax : -1.0f);
    }
  }
  return amax;
}

// Random batch sizes over x, each batch to a random one of `parts` histograms.
std::vector<Histogram> SplitRandomly(std::span<const float> x, int parts, std::mt19937& rng,
                                     int num_bins, bool skip_zeros) {
  std::vector<Histogram> hists(static_cast<size_t>(parts), MakeMergeable(num_bins, skip_zeros));
  for (size_t begin = 0; begin < x.size();) {
    const size_t size = std::min<size_t>(x.size() - begin, 1 + rng() % (x.size() / 4 + 1));
    EXPECT_TRUE(hists[rng() % parts].Collect(x.subspan(begin, size)).ok());
    begin += size;
  }
  return hists;
}

// Merges the states pairwise in a random tree shape.
MergeableState MergeAsRandomTree(std::vector<MergeableState> states, std::mt19937& rng,
                                 int num_bins) {
  while (states.size() > 1) {
    const size_t a = rng() % states.size();
    size_t b = rng() % (states.size() - 1);
    if (b >= a) ++b;
    EXPECT_TRUE(MergeMergeable(states[a], states[b], num_bins).ok());
    states.erase(states.begin() + static_cast<std::ptrdiff_t>(b));
  }
  return states[0];
}

// Values of several kinds: N(0, 1) scaled, zeros, an outlier, non-finite values, subnormals,
// values on bin edges.
std::vector<float> PropertyValues(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float scale = std::array{1.0f, 1e-3f, 40.0f, 1e-40f}[seed % 4];
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng) * scale;
  for (size_t i = 0; i < n / 50; ++i) x[rng() % n] = 0.0f;
  for (size_t i = 0; i < n / 500; ++i) x[rng() % n] = std::ldexp(float(rng() % 64), -5);
  if (seed % 3 == 0) x[rng() % n] = 1e30f;
  if (seed % 2 == 0) {
    x[rng() % n] = kNaN;
    x[rng() % n] = -kInf;
  }
  return x;
}

// Same values, shuffled, re-batched and split over 1..16 histograms and states merged in random
// order and tree shapes: the same state and the same amax by every method, bit for bit.
TEST(MergeableHistogramTest, OrderBatchingAndSplitDoNotChangeStateOrAmax) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    for (const bool skip_zeros : {false, true}) {
      std::mt19937 rng(seed * 7 + skip_zeros);
      const int num_bins = std::array{2048, 128, 1000, 3}[seed % 4];
      std::vector<float> x = PropertyValues(seed, 60000);
      const MergeableState whole = Count(x, num_bins, skip_zeros);
      Histogram one = MakeMergeable(num_bins, skip_zeros);
      ASSERT_TRUE(one.Collect(x).ok());
      const std::vector<float> want_amax = AllAmax(one);

      std::shuffle(x.begin(), x.end(), rng);
      const int parts = 1 + static_cast<int>(rng() % 16);
      std::vector<Histogram> hists = SplitRandomly(x, parts, rng, num_bins, skip_zeros);
      std::vector<MergeableState> states;
      for (const Histogram& h : hists) states.push_back(*h.ExportMergeable());
      std::shuffle(hists.begin(), hists.end(), rng);
      Histogram merged = MakeMergeable(num_bins, skip_zeros);
      for (const Histogram& h : hists) ASSERT_TRUE(merged.Merge(h).ok());
      const std::string what = absl::StrCat("seed ", seed, " skip_zeros ", skip_zeros, " parts ",
                                            parts, " num_bins ", num_bins);
      EXPECT_EQ(*merged.ExportMergeable(), whole) << what;
      EXPECT_EQ(MergeAsRandomTree(states, rng, num_bins), whole) << what;
      EXPECT_EQ(merged.total(), one.total()) << what;
      EXPECT_EQ(AllAmax(merged), want_amax) << what;
      Histogram from_state = MakeMergeable(num_bins, skip_zeros);
      ASSERT_TRUE(from_state.MergeMergeable(whole).ok());
      EXPECT_EQ(AllAmax(from_state), want_amax) << what;
      EXPECT_EQ(std::vector<float>(from_state.Edges().begin(), from_state.Edges().end()),
                std::vector<float>(one.Edges().begin(), one.Edges().end()));
    }
  }
}

TEST(MergeableHistogramTest, AllZeroFirstBatchesThenData) {
  Histogram h = MakeMergeable(16);
  ASSERT_TRUE(h.Collect(std::vector<float>{0.0f, -0.0f, kNaN}).ok());
  ASSERT_TRUE(h.Collect(std::vector<float>{0.0f}).ok());
  EXPECT_EQ(h.pending_zeros(), 3u);
  EXPECT_EQ(*h.ExportMergeable(), (MergeableState{.zeros = 3}));
  ASSERT_TRUE(h.Collect(std::vector<float>{1.0f, 0.0f}).ok());
  // m = 1, 16 bins: k = -4 (16 < 32), 17 bins; the four zeros in bin 0.
  const MergeableState state = *h.ExportMergeable();
  EXPECT_EQ(state, Count({0.0f, -0.0f, 0.0f, 1.0f, 0.0f}, 16));
  EXPECT_EQ(state.exponent, -4);
  EXPECT_EQ(state.counts.size(), 17u);
  EXPECT_EQ(state.counts[0], 4u);
  EXPECT_EQ(state.counts[16], 1u);
  EXPECT_EQ(h.pending_zeros(), 0u);
  EXPECT_EQ(h.total(), 5u);
  // Zeros after the range exists go to bin 0 as well.
  ASSERT_TRUE(h.Collect(std::vector<float>{0.0f, 0.0f}).ok());
  EXPECT_EQ(h.Counts()[0], 6u);
}

TEST(MergeableHistogramTest, OneHugeOutlierCoarsensExactly) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(20000);
  for (float& v : x) v = normal(rng);
  const MergeableState before = Count(x);
  x.push_back(1e30f);
  const MergeableState after = Count(x);
  // 1e30 / 2^k < 4096: k = 88 (1e30 ~ 1.58 * 2^99); everything else lies in bin 0.
  EXPECT_EQ(after.exponent, MergeableExponent(1e30f, 2048));
  EXPECT_EQ(after.exponent, 88);
  EXPECT_EQ(after.counts[0], 20000u);
  EXPECT_EQ(after.counts.back(), 1u);
  MergeableState merged = before;
  ASSERT_TRUE(MergeMergeable(merged, Count({1e30f}), 2048).ok());
  EXPECT_EQ(merged, after);
  EXPECT_THAT(CoarsenMergeableCounts(before, 88, 3), ElementsAre(20000u, 0u, 0u));
}

TEST(MergeableHistogramTest, ValuesOnBinEdgesGoToTheBinTheyStart) {
  // m = 1, num_bins 4: k = -2 (4 < 8), edges i / 4.
  std::vector<float> x;
  for (int i = 1; i <= 4; ++i) {
    x.push_back(std::ldexp(float(i), -2));
    x.push_back(std::nextafter(std::ldexp(float(i), -2), 0.0f));
  }
  const MergeableState state = Count(x, 4);
  EXPECT_EQ(state.exponent, -2);
  EXPECT_THAT(state.counts, ElementsAre(1u, 2u, 2u, 2u, 1u));
}

TEST(MergeableHistogramTest, SubnormalMaximaGiveOneBinPerFloat) {
  // 1e-42 is 714 * 2^-149 (rounded): k stops at -149, 715 bins, fewer than num_bins.
  const float m = 1e-42f;
  ASSERT_EQ(std::ldexp(m, 149), 714.0f);
  std::vector<float> x = {m, -m, 0x1p-149f, 3 * 0x1p-149f, 0.0f};
  for (const int64_t num_bins : {int64_t{2048}, Histogram::kMaxBinsLimit}) {
    const MergeableState state = Count(x, num_bins);
    EXPECT_EQ(state.exponent, -149);
    ASSERT_EQ(state.counts.size(), 715u);
    EXPECT_EQ(state.counts[0], 1u);
    EXPECT_EQ(state.counts[1], 1u);
    EXPECT_EQ(state.counts[3], 1u);
    EXPECT_EQ(state.counts[714], 2u);
    EXPECT_EQ(state.total(), 5u);
  }
  Histogram h = MakeMergeable();
  ASSERT_TRUE(h.Collect(x).ok());
  EXPECT_EQ(h.Edges()[714], 714 * 0x1p-149f);
  EXPECT_EQ(h.Edges().back(), 715 * 0x1p-149f);
}

TEST(MergeableHistogramTest, MaximaNearFltMaxKeepFiniteEdges) {
  // FLT_MAX / 2^116 = 4096 (1 - 2^-24) < 4096: k = 116, 4096 bins; the last edge 2^128 is FLT_MAX.
  const MergeableState state = Count({FLT_MAX, -3e38f, 1.0f, 0.0f});
  EXPECT_EQ(state.exponent, 116);
  ASSERT_EQ(state.counts.size(), 4096u);
  EXPECT_EQ(state.counts[0], 2u);
  EXPECT_EQ(state.counts[4095], 1u);
  EXPECT_EQ(state.counts[static_cast<size_t>(3e38 / 0x1p116)], 1u);
  Histogram h = MakeMergeable();
  ASSERT_TRUE(h.Collect(std::vector<float>{FLT_MAX, 2.0f}).ok());
  EXPECT_EQ(h.Edges().back(), FLT_MAX);
  EXPECT_EQ(h.Edges()[4095], 4095 * 0x1p116f);
  for (const float e : h.Edges()) ASSERT_TRUE(std::isfinite(e));
  // num_bins 1: k = 127 and two bins, [0, 2^127) and [2^127, FLT_MAX].
  const MergeableState one = Count({FLT_MAX, 1.0f}, 1);
  EXPECT_EQ(one.exponent, 127);
  EXPECT_THAT(one.counts, ElementsAre(1u, 1u));
  for (const float amax : AllAmax(h)) EXPECT_TRUE(std::isfinite(amax));
}

TEST(MergeableHistogramTest, SkipZerosLeavesOutExactZerosOnly) {
  const MergeableState state = Count({0.0f, -0.0f, 0x1p-149f, 1.0f, 0.0f}, 4, true);
  EXPECT_EQ(state.total(), 2u);
  EXPECT_EQ(state.counts[0], 1u);  // the subnormal, not the zeros
  Histogram h = MakeMergeable(4, /*skip_zeros=*/true);
  ASSERT_TRUE(h.Collect(std::vector<float>{0.0f, 0.0f}).ok());
  EXPECT_EQ(h.total(), 0u);
  EXPECT_FALSE(h.empty());
  EXPECT_EQ(*h.ExportMergeable(), MergeableState{});
  // As in the reference layout: a batch was collected but no value counted.
  EXPECT_EQ(HistogramAmax(h, AmaxMethod::kEntropy, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(MergeableHistogramTest, CountsNear2To60MergeAndOverflowIsRefused) {
  const uint64_t big = uint64_t{1} << 60;
  const MergeableState part{.exponent = -2, .counts = {0, big, 0, 1}, .abs_max = 0.75f};
  ASSERT_TRUE(ValidateMergeableState(part, 2).ok());
  MergeableState state = part;
  for (int i = 1; i < 15; ++i) ASSERT_TRUE(MergeMergeable(state, part, 2).ok()) << i;
  EXPECT_EQ(state.counts[1], big * 15);
  EXPECT_EQ(state.total(), big * 15 + 15);
  const MergeableState before = state;
  EXPECT_EQ(MergeMergeable(state, part, 2).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(state, before);
  // Overflow through zeros alone, and through the total of bins that each fit.
  MergeableState zeros{.zeros = ~uint64_t{0}};
  EXPECT_EQ(MergeMergeable(zeros, MergeableState{.zeros = 1}, 2).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(zeros.zeros, ~uint64_t{0});
  Histogram h = MakeMergeable(2);
  ASSERT_TRUE(h.MergeMergeable(before).ok());
  const absl::Status status = h.MergeMergeable(part);
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(status.message(), HasSubstr("2^64 - 1"));
  EXPECT_EQ(*h.ExportMergeable(), before);
  EXPECT_EQ(h.total(), before.total());
}

TEST(MergeableHistogramTest, ValidateRefusesEachNonCanonicalField) {
  const MergeableState good = Count({1.0f, 0.5f, 0.0f}, 4);  // k = -2, 5 bins
  ASSERT_EQ(good.exponent, -2);
  const auto refused = [](const MergeableState& state, int64_t num_bins, const char* field) {
    const absl::Status status = ValidateMergeableState(state, num_bins);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(status.message(), HasSubstr(field));
  };
  refused(good, 0, "num_bins");
  refused(good, Histogram::kMaxBinsLimit + 1, "num_bins");
  MergeableState s = good;
  s.abs_max = -1.0f;
  refused(s, 4, "abs_max");
  s.abs_max = kNaN;
  refused(s, 4, "abs_max");
  s.abs_max = kInf;
  refused(s, 4, "abs_max");
  s = good;
  s.exponent = -3;
  refused(s, 4, "exponent -3 should be -2");
  refused(good, 8, "exponent -2 should be -3");
  s = good;
  s.counts.push_back(1);
  refused(s, 4, "counts has 6 bins, should have 5");
  s = good;
  s.counts.back() = 0;
  refused(s, 4, "last count");
  s = good;
  s.zeros = 1;
  refused(s, 4, "zeros 1");
  refused(MergeableState{.exponent = 3}, 4, "exponent 3 should be 0");
  refused(MergeableState{.counts = {1}}, 4, "counts has 1 bins, should have 0");
  EXPECT_TRUE(ValidateMergeableState(MergeableState{.zeros = 7}, 4).ok());
  // Refused states are not merged.
  MergeableState target = good;
  EXPECT_EQ(MergeMergeable(target, s, 4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(target, good);
}

TEST(MergeableHistogramTest, NumBinsOneAndTheLimit) {
  // num_bins 1: one or two bins; k is the exponent of the max's power of two.
  const MergeableState one = Count({0.3f, 1.5f, 0.9f}, 1);
  EXPECT_EQ(one.exponent, 0);  // 1.5 / 1 < 2
  EXPECT_THAT(one.counts, ElementsAre(2u, 1u));
  EXPECT_EQ(Count({1.0f}, 1).exponent, 0);
  EXPECT_EQ(Count({0.99f}, 1).exponent, -1);
  // num_bins 2^24: m = 1 gives k = -24 and 2^24 + 1 bins.
  const MergeableState limit =
      Count({1.0f, 0.5f, std::nextafter(1.0f, 0.0f)}, Histogram::kMaxBinsLimit);
  EXPECT_EQ(limit.exponent, -24);
  ASSERT_EQ(limit.counts.size(), (size_t{1} << 24) + 1);
  EXPECT_EQ(limit.counts[size_t{1} << 23], 1u);
  EXPECT_EQ(limit.counts[(size_t{1} << 24) - 1], 1u);
  EXPECT_EQ(limit.counts.back(), 1u);
  EXPECT_EQ(CountMergeable(std::vector<float>{1.0f}, {.num_bins = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CountMergeable(std::vector<float>{1.0f}, {.num_bins = Histogram::kMaxBinsLimit + 1})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MergeableHistogramTest, LayoutsAndNumBinsMustMatchToMerge) {
  Histogram mergeable = MakeMergeable(64);
  ASSERT_TRUE(mergeable.Collect(std::vector<float>{1.0f}).ok());
  auto reference = Histogram::Create({.num_bins = 64});
  ASSERT_TRUE(reference->Collect(std::vector<float>{1.0f}).ok());
  EXPECT_EQ(mergeable.Merge(*reference).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reference->Merge(mergeable).code(), absl::StatusCode::kFailedPrecondition);
  Histogram other = MakeMergeable(32);
  ASSERT_TRUE(other.Collect(std::vector<float>{2.0f}).ok());
  EXPECT_EQ(mergeable.Merge(other).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reference->MergeMergeable({}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reference->ExportMergeable().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mergeable.ExportReference().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mergeable.total(), 1u);
  // Self-merge doubles the counts.
  ASSERT_TRUE(mergeable.Merge(mergeable).ok());
  EXPECT_EQ(mergeable.total(), 2u);
  EXPECT_EQ(mergeable.Counts().back(), 2u);
}

TEST(MergeableHistogramTest, GrowIsANoOpWithinTheRangeAndRefusedBeyond) {
  Histogram h = MakeMergeable(4);
  EXPECT_TRUE(h.Grow(0.0f).ok());
  EXPECT_EQ(h.Grow(1.0f).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(h.Collect(std::vector<float>{1.0f}).ok());  // edges up to 1.25
  const MergeableState before = *h.ExportMergeable();
  EXPECT_TRUE(h.Grow(1.25f).ok());
  EXPECT_EQ(h.Grow(1.3f).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(h.Grow(-1.0f).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*h.ExportMergeable(), before);
  h.Reset();
  EXPECT_TRUE(h.empty());
  EXPECT_EQ(*h.ExportMergeable(), MergeableState{});
}

TEST(MergeableHistogramTest, ReferenceStateRoundTripsAndRefusesInconsistentFields) {
  auto h = Histogram::Create({.num_bins = 8});
  ASSERT_TRUE(h->Collect(std::vector<float>{0.0f}).ok());
  auto pending = h->ExportReference();
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->pending_zeros, 1u);
  ASSERT_TRUE(h->Collect(std::vector<float>{1.0f, 3.0f, -2.0f}).ok());
  const Histogram::ReferenceState state = *h->ExportReference();
  auto restored = Histogram::Create({.num_bins = 8});
  ASSERT_TRUE(restored->RestoreReference(*pending).ok());
  ASSERT_TRUE(restored->Collect(std::vector<float>{1.0f, 3.0f, -2.0f}).ok());
  EXPECT_EQ(*restored->ExportReference(), state);
  ASSERT_TRUE(restored->RestoreReference(state).ok());
  EXPECT_EQ(*restored->ExportReference(), state);
  EXPECT_EQ(AllAmax(*restored), AllAmax(*h));

  const auto refused = [&](Histogram::ReferenceState bad, const char* field) {
    const Histogram::ReferenceState kept = *restored->ExportReference();
    const absl::Status status = restored->RestoreReference(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(status.message(), HasSubstr(field));
    EXPECT_EQ(*restored->ExportReference(), kept);
  };
  Histogram::ReferenceState bad = state;
  bad.edges.pop_back();
  refused(bad, "edges has 8 values");
  bad = state;
  bad.edges[0] = 0.5f;
  refused(bad, "edges[0]");
  bad = state;
  bad.edges[3] = bad.edges[2] - 0.25f;
  refused(bad, "edges[3]");
  bad = state;
  bad.edges[3] = std::nanf("");
  refused(bad, "edges[3] = nan is not finite, or below edges[2]");
  // Equal neighbours are what float32 edges become past about 2^23 bins: a state the histogram
  // built (a raised --max-num-bins) loads again, where a restart once refused it.
  Histogram::ReferenceState equal = state;
  equal.edges[3] = equal.edges[2];
  auto again = Histogram::Create({.num_bins = 8});
  ASSERT_TRUE(again->RestoreReference(equal).ok());
  EXPECT_EQ(*again->ExportReference(), equal);
  bad = state;
  bad.abs_max = 100.0f;
  refused(bad, "abs_max 100");
  bad = state;
  bad.abs_max = -1.0f;
  refused(bad, "abs_max -1");
  bad = state;
  bad.total += 1;
  refused(bad, "total");
  bad = state;
  bad.pending_zeros = 1;
  refused(bad, "pending_zeros");
  bad = state;
  bad.collected = false;
  refused(bad, "collected");
  auto small = Histogram::Create({.num_bins = 4, .max_bins = 4});
  EXPECT_EQ(small->RestoreReference(state).code(), absl::StatusCode::kInvalidArgument);
  Histogram mergeable = MakeMergeable(8);
  EXPECT_EQ(mergeable.RestoreReference(state).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace qcal::kernels
