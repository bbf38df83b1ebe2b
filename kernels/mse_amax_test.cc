// The bounded mse search (mse_amax.cc) against today's O(candidates x occupied) search
// (mse_amax_internal.h's MseAmaxQuadratic): the same index and the same amax and score bits on
// random histograms, and the cancellation hook of every search.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/amax_search.h"
#include "kernels/mse_amax_internal.h"
#include "kernels/mse_centers.h"
#include "kernels/parallel.h"

namespace qcal::kernels {
namespace {

struct Case {
  std::vector<uint64_t> counts;
  std::vector<float> edges;
  SearchOptions options;
  std::string name;
};

// One random histogram and search. Sizes from 10 to 2^17 bins, but today's search costs
// candidates x occupied bins, so large histograms are sparse or searched from a high start_bin.
Case RandomCase(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto pick = [&](int64_t lo, int64_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  Case c;
  const int shape = static_cast<int>(pick(0, 7));
  const bool large = pick(0, 9) == 0;
  const int64_t bins =
      large ? pick(1 << 14, 1 << 17)
            : static_cast<int64_t>(std::exp(uniform(std::log(10.0), std::log(3000.0))));
  c.counts.assign(static_cast<size_t>(bins), 0);
  // Count magnitudes: small, ordinary, or up to 2^60.
  const int magnitude = static_cast<int>(pick(0, 2));
  const double peak = magnitude == 0 ? 20.0 : magnitude == 1 ? 1e6 : std::ldexp(1.0, 60);
  const double zero_fraction = uniform(0.0, 0.6);
  const int64_t dense_bins = large ? std::min<int64_t>(bins, pick(50, 20000)) : bins;
  auto noisy = [&](double mean) {
    if (uniform(0, 1) < zero_fraction) return uint64_t{0};
    const double v = mean * uniform(0.5, 1.5);
    return v < 1.0 ? uint64_t{uniform(0, 1) < v} : static_cast<uint64_t>(std::min(v, 0x1p62));
  };
  switch (shape) {
    case 0:  // normal, the common case
    case 1:
      for (int64_t k = 0; k < dense_bins; ++k) {
        const double x = 4.0 * static_cast<double>(k) / static_cast<double>(dense_bins);
        c.counts[k] = noisy(peak * std::exp(-x * x / 2));
      }
      break;
    case 2:  // Laplace with a long sparse tail
      for (int64_t k = 0; k < dense_bins; ++k) {
        c.counts[k] = noisy(peak * std::exp(-8.0 * static_cast<double>(k) / dense_bins));
      }
      for (int t = 0; t < 10; ++t)
        c.counts[pick(0, bins - 1)] = static_cast<uint64_t>(uniform(1, 5));
      break;
    case 3:  // Cauchy-like heavy tail
      for (int64_t k = 0; k < dense_bins; ++k) {
        const double x = 30.0 * static_cast<double>(k) / static_cast<double>(dense_bins);
        c.counts[k] = noisy(peak / (1.0 + x * x));
      }
      break;
    case 4:  // a few occupied bins anywhere
      for (int64_t t = pick(1, 40); t > 0; --t) {
        c.counts[pick(0, bins - 1)] = static_cast<uint64_t>(uniform(1, peak));
      }
      break;
    case 5:  // one spike
      c.counts[pick(0, bins - 1)] = static_cast<uint64_t>(uniform(1, peak));
      break;
    case 6:  // flat
      for (int64_t k = 0; k < dense_bins; ++k) c.counts[k] = noisy(peak);
      break;
    default:  // mass near zero only
      for (int64_t k = 0; k < std::min<int64_t>(bins, pick(1, 8)); ++k) {
        c.counts[k] = static_cast<uint64_t>(uniform(1, peak));
      }
      break;
  }
  if (std::all_of(c.counts.begin(), c.counts.end(), [](uint64_t v) { return v == 0; })) {
    c.counts[pick(0, bins - 1)] = 1;
  }
  // Edges: uniform float32 steps (as qcal's histograms), float32 of exact linspace, uneven, or
  // binary steps; ordinary ranges, or extreme magnitudes (mse_centers.h's scaled units).
  const int range_kind = static_cast<int>(pick(0, 9));
  const double top = range_kind == 0   ? std::pow(10.0, uniform(-38, -20))
                     : range_kind == 1 ? std::pow(10.0, uniform(20, 37))
                                       : std::pow(10.0, uniform(-4, 4));
  // Kind 4: power-of-two steps (centers on a binary grid), where c * s lands on half-integers
  // and rounds half to even more often.
  const int edge_kind = static_cast<int>(pick(0, 4));
  const float binary_step = std::ldexp(1.0f, static_cast<int>(pick(-12, 4)));
  c.edges.resize(static_cast<size_t>(bins) + 1);
  const float step = static_cast<float>(top / static_cast<double>(bins));
  for (int64_t k = 0; k <= bins; ++k) {
    const double f = static_cast<double>(k) / static_cast<double>(bins);
    c.edges[k] = edge_kind == 0   ? static_cast<float>(k) * step
                 : edge_kind == 3 ? static_cast<float>(top * f * f)
                 : edge_kind == 4 ? static_cast<float>(k) * binary_step
                                  : static_cast<float>(top * f);
  }
  // Search options: every grid size, signed and unsigned, varied candidates. Today's cost
  // grows with candidates x occupied bins: large dense ones start high.
  c.options.num_bits = static_cast<int>(pick(2, 16));
  c.options.is_unsigned = pick(0, 2) == 0;
  c.options.stride = pick(0, 3) == 0 ? static_cast<int>(pick(2, 9)) : 1;
  const int64_t start_kind = pick(0, 3);
  c.options.start_bin = static_cast<int>(start_kind == 0   ? 0
                                         : start_kind == 1 ? std::min<int64_t>(128, bins - 1)
                                                           : pick(0, bins - 1));
  if (large && shape != 4 && shape != 5 && shape != 7) {
    c.options.start_bin = static_cast<int>(std::max<int64_t>(c.options.start_bin, bins - 300));
  }
  c.name =
      absl::StrCat("seed ", seed, " shape ", shape, " bins ", bins, " edges ", edge_kind, " top ",
                   top, " bits ", c.options.num_bits, c.options.is_unsigned ? "u" : "", " start ",
                   c.options.start_bin, " stride ", c.options.stride);
  return c;
}

TEST(MseAmaxBoundedTest, SameChoiceAsTheQuadraticSearchOnRandomHistograms) {
  int64_t fine = 0, rescored = 0, max_rescored = 0, coarse = 0;
  for (uint64_t seed = 1; seed <= 1000; ++seed) {
    const Case c = RandomCase(seed);
    const absl::StatusOr<AmaxChoice> want =
        internal::MseAmaxQuadratic(c.counts, c.edges, c.options);
    ASSERT_TRUE(want.ok()) << c.name << ": " << want.status();
    // As shipped, and with every candidate that has more occupied bins below it than levels
    // sent through the tiers.
    for (const int64_t direct : {internal::kMseDirectBinsPerLevel, int64_t{1}}) {
      internal::MseSearchStats stats;
      const absl::StatusOr<AmaxChoice> got =
          internal::MseAmaxWithStats(c.counts, c.edges, c.options, &stats, direct);
      ASSERT_TRUE(got.ok()) << c.name << ": " << got.status();
      ASSERT_EQ(got->index, want->index) << c.name << " direct " << direct;
      ASSERT_EQ(std::bit_cast<uint32_t>(got->amax), std::bit_cast<uint32_t>(want->amax)) << c.name;
      ASSERT_EQ(std::bit_cast<uint64_t>(got->score), std::bit_cast<uint64_t>(want->score))
          << c.name;
      EXPECT_FALSE(stats.quadratic) << c.name;
      coarse += stats.coarse;
      fine += stats.fine;
      rescored += stats.rescored;
      max_rescored = std::max(max_rescored, stats.rescored);
    }
    if (seed % 10 == 0) {
      const absl::StatusOr<AmaxChoice> public_choice = MseAmax(c.counts, c.edges, c.options);
      ASSERT_TRUE(public_choice.ok());
      EXPECT_EQ(public_choice->index, want->index) << c.name;
    }
  }
  // How much the tiers left to the one-at-a-time scorer (the cost, not the result). Where
  // absorbed terms leave many candidates with equal doubles (a dense low region of huge counts
  // quantized to 0, a tail of small ones: seed 756), all of those are rescored.
  std::printf("coarse %lld, fine %lld, rescored %lld (at most %lld in one search)\n",
              static_cast<long long>(coarse), static_cast<long long>(fine),
              static_cast<long long>(rescored), static_cast<long long>(max_rescored));
}

TEST(MseAmaxBoundedTest, ErrorsAgreeWithTheQuadraticSearch) {
  for (uint64_t seed = 2001; seed <= 2100; ++seed) {
    const Case c = RandomCase(seed);
    const auto want = internal::MseErrorsQuadratic(c.counts, c.edges, c.options);
    const auto got = MseErrors(c.counts, c.edges, c.options);
    ASSERT_TRUE(want.ok() && got.ok()) << c.name;
    ASSERT_EQ(got->size(), want->size());
    // The reference's double sums are within (n / 8 + 11) 2^-53 of the exact sum, the level
    // sums within about 2^-50 (amax_search.h).
    const double tolerance = (static_cast<double>(c.counts.size()) / 8 + 64) * 0x1p-52;
    for (size_t k = 0; k < want->size(); ++k) {
      ASSERT_NEAR((*got)[k], (*want)[k], tolerance * (*want)[k]) << c.name << " candidate " << k;
    }
  }
}

TEST(MseAmaxBoundedTest, LargeDenseHistogramLeavesAHandfulToRescore) {
  // 2^17 bins of a normal shape, dense: the coarse tier must leave a handful to rescore.
  const int64_t bins = 1 << 17;
  std::vector<uint64_t> counts(bins);
  std::vector<float> edges(bins + 1);
  const float step = 6.0f / static_cast<float>(bins);
  for (int64_t k = 0; k <= bins; ++k) edges[k] = static_cast<float>(k) * step;
  std::mt19937_64 rng(5);
  for (int64_t k = 0; k < bins; ++k) {
    const double x = 6.0 * static_cast<double>(k) / bins;
    counts[k] =
        static_cast<uint64_t>(1e5 * std::exp(-x * x / 2) * (0.9 + 0.2 * (rng() % 1000) / 1e3));
  }
  for (const int num_bits : {4, 8}) {
    internal::MseSearchStats stats;
    const auto choice = internal::MseAmaxWithStats(counts, edges, {.num_bits = num_bits}, &stats);
    ASSERT_TRUE(choice.ok()) << choice.status();
    EXPECT_GT(choice->index, 128);
    EXPECT_LE(stats.rescored, 64) << num_bits;
    // Today's score of the winner (its whole search takes seconds here).
    const float bound = static_cast<float>((1 << (num_bits - 1)) - 1);
    const internal::MseTables tables =
        internal::BuildMseTables(counts, MseSearchCenters(edges).centers);
    const double want =
        internal::CandidateError(tables, choice->index, bound, -bound) / static_cast<double>(bins);
    EXPECT_EQ(std::bit_cast<uint64_t>(want), std::bit_cast<uint64_t>(choice->score));
  }
}

// A hook that says "cancelled" from its nth call on, counting its calls.
struct CountingHook {
  explicit CountingHook(int64_t n) : fn([this, n] { return calls.fetch_add(1) + 1 >= n; }) {}
  std::atomic<int64_t> calls{0};
  std::function<bool()> fn;
};

std::vector<uint64_t> NormalCounts(int64_t bins) {
  std::vector<uint64_t> counts(bins);
  for (int64_t k = 0; k < bins; ++k) {
    const double x = 4.0 * static_cast<double>(k) / bins;
    counts[k] = static_cast<uint64_t>(1e6 * std::exp(-x * x / 2)) + 1;
  }
  return counts;
}

std::vector<float> Edges(int64_t bins) {
  std::vector<float> edges(bins + 1);
  for (int64_t k = 0; k <= bins; ++k) edges[k] = static_cast<float>(k) * 0.01f;
  return edges;
}

// Runs `search` with a hook that never cancels (counting its polls), then with one that
// cancels at half that count: CANCELLED, and at most one more poll per thread after it.
template <typename Search>
void ExpectCancelledMidway(Search search, const std::string& what) {
  CountingHook never(int64_t{1} << 62);
  ASSERT_TRUE(search(&never.fn).ok()) << what;
  const int64_t polls = never.calls.load();
  ASSERT_GE(polls, 4) << what;  // polled during the work, not only at the start
  CountingHook midway(polls / 2);
  const absl::Status status = search(&midway.fn);
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << what << ": " << status;
  EXPECT_NE(status.message().find("search cancelled"), std::string::npos) << status;
  EXPECT_LE(midway.calls.load(), polls / 2 + MaxParallelism()) << what;
  // Cancelled before it starts: one poll, no work.
  CountingHook first(1);
  EXPECT_EQ(search(&first.fn).code(), absl::StatusCode::kCancelled) << what;
  EXPECT_EQ(first.calls.load(), 1) << what;
}

TEST(SearchCancelTest, MseEntropyAndPercentileStopWhenTheHookSaysSo) {
  const int64_t bins = 1 << 15;
  const std::vector<uint64_t> counts = NormalCounts(bins);
  const std::vector<float> edges = Edges(bins);
  ExpectCancelledMidway(
      [&](const std::function<bool()>* hook) {
        return MseAmax(counts, edges, {.num_bits = 8, .cancelled = hook}).status();
      },
      "mse");
  ExpectCancelledMidway(
      [&](const std::function<bool()>* hook) {
        return MseErrors(counts, edges, {.num_bits = 8, .cancelled = hook}).status();
      },
      "mse errors");
  ExpectCancelledMidway(
      [&](const std::function<bool()>* hook) {
        return EntropyAmax(counts, edges, {.num_bits = 8, .cancelled = hook}).status();
      },
      "entropy");
  const std::vector<uint64_t> wide = NormalCounts(1 << 20);
  ExpectCancelledMidway(
      [&](const std::function<bool()>* hook) {
        return PercentileAmax(wide, Edges(1 << 20), 99.99, hook).status();
      },
      "percentile");
}

TEST(SearchCancelTest, AHookThatNeverCancelsChangesNothing) {
  const std::vector<uint64_t> counts = NormalCounts(5000);
  const std::vector<float> edges = Edges(5000);
  CountingHook never(int64_t{1} << 62);
  const auto plain = MseAmax(counts, edges, {.num_bits = 8});
  const auto hooked = MseAmax(counts, edges, {.num_bits = 8, .cancelled = &never.fn});
  ASSERT_TRUE(plain.ok() && hooked.ok());
  EXPECT_EQ(plain->index, hooked->index);
  EXPECT_EQ(std::bit_cast<uint64_t>(plain->score), std::bit_cast<uint64_t>(hooked->score));
}

}  // namespace
}  // namespace qcal::kernels
