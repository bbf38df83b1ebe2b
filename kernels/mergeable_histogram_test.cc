#include "kernels/mergeable_histogram.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/histogram.h"

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

// Same values, shuffled, re-batched and split over several histograms merged in random order:
// the same state bit for bit.
TEST(MergeableHistogramTest, OrderBatchingAndSplitDoNotChangeTheState) {
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(300000);
    for (float& v : x) v = normal(rng) * (seed == 2 ? 1e-3f : 1.0f);
    x[1234] = 0.0f;
    const MergeableState whole = Count(x);
    std::shuffle(x.begin(), x.end(), rng);
    const int parts = 1 + static_cast<int>(rng() % 16);
    std::vector<Histogram> hists(static_cast<size_t>(parts), MakeMergeable());
    for (size_t begin = 0; begin < x.size();) {
      const size_t size = std::min<size_t>(x.size() - begin, 1 + rng() % 40000);
      ASSERT_TRUE(hists[rng() % parts].Collect(std::span(x).subspan(begin, size)).ok());
      begin += size;
    }
    std::shuffle(hists.begin(), hists.end(), rng);
    Histogram merged = MakeMergeable();
    for (const Histogram& h : hists) ASSERT_TRUE(merged.Merge(h).ok());
    auto state = merged.ExportMergeable();
    ASSERT_TRUE(state.ok());
    EXPECT_EQ(*state, whole) << "seed " << seed;
    EXPECT_EQ(merged.total(), x.size());
  }
}

}  // namespace
}  // namespace qcal::kernels
