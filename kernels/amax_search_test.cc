#include "kernels/amax_search.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<float> UnitEdges(size_t bins) {
  std::vector<float> edges(bins + 1);
  for (size_t k = 0; k < edges.size(); ++k) edges[k] = static_cast<float>(k);
  return edges;
}

// The reference's _compute_amax_entropy, transcribed loop for loop (p, q, scipy's entropy).
std::vector<double> NaiveDivergences(std::vector<uint64_t> h, int levels, int start, int stride) {
  h[0] = h[1];
  const size_t n = h.size();
  std::vector<double> out;
  for (size_t i = start; i <= n; i += stride) {
    std::vector<double> p(h.begin(), h.begin() + i);
    for (size_t j = i; j < n; ++j) p[i - 1] += static_cast<double>(h[j]);
    std::vector<double> group_sum(levels, 0.0), group_bins(levels, 0.0), q(i, 0.0);
    for (size_t j = 0; j < i; ++j) {
      if (h[j] == 0) continue;
      const size_t g = j * levels / i;
      group_sum[g] += static_cast<double>(h[j]);
      group_bins[g] += 1;
    }
    for (size_t j = 0; j < i; ++j) {
      if (h[j] != 0) q[j] = group_sum[j * levels / i] / group_bins[j * levels / i];
    }
    double p_total = 0, q_total = 0;
    for (size_t j = 0; j < i; ++j) {
      p_total += p[j];
      q_total += q[j];
    }
    double d = 0;
    for (size_t j = 0; j < i; ++j) {
      const double x = p[j] / p_total;
      const double y = q[j] / q_total;
      if (std::isnan(x) || std::isnan(y)) {
        d = std::numeric_limits<double>::quiet_NaN();
        break;
      }
      if (x > 0 && y > 0) d += x * std::log(x / y);
      if (x > 0 && y == 0) d = kInf;
    }
    out.push_back(d);
  }
  return out;
}

// The reference's _compute_amax_mse per candidate, float32 fake quantization, double sums.
std::vector<double> NaiveMse(const std::vector<uint64_t>& h, const std::vector<float>& edges,
                             float bound, int start, int stride) {
  std::vector<float> centers(h.size());
  for (size_t k = 0; k < h.size(); ++k) centers[k] = (edges[k + 1] + edges[k]) / 2.0f;
  std::vector<double> out;
  for (size_t i = start; i < h.size(); i += stride) {
    const float amax = centers[i];
    const bool zero = amax <= 0x1p-24f;
    const float scale = bound / amax;
    double sum = 0;
    for (size_t k = 0; k < h.size(); ++k) {
      float q = std::nearbyint(centers[k] * (zero ? 0.0f : scale));
      q = std::min(std::max(q, -bound), bound);
      const double d = static_cast<double>(q / (zero ? 1.0f : scale)) - centers[k];
      sum += static_cast<double>(h[k]) * d * d;
    }
    out.push_back(sum / static_cast<double>(h.size()));
  }
  return out;
}

// A bumpy histogram with empty stretches (occupancy matters to the KL search).
std::vector<uint64_t> BumpyCounts(size_t bins) {
  std::vector<uint64_t> h(bins);
  uint32_t state = 7;
  for (size_t k = 0; k < bins; ++k) {
    state = state * 1103515245u + 12345u;
    const double shape = 1000.0 * std::exp(-static_cast<double>(k) / (bins / 5.0));
    h[k] = (state >> 28) < 3 ? 0 : static_cast<uint64_t>(shape) + (state >> 27) % 5;
  }
  return h;
}

TEST(EntropyAmaxTest, HandComputedDivergences) {
  // h = [0, 2, 2, 4] -> [2, 2, 2, 4] with the zero bin taking its neighbour's count; two levels.
  const std::vector<uint64_t> counts = {0, 2, 2, 4};
  const SearchOptions options{.num_bits = 2, .start_bin = 2};
  const auto d = KlDivergences(counts, options);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->size(), 3u);
  EXPECT_NEAR((*d)[0], 0.19274475702175753, 1e-14);  // .2 ln .4 + .8 ln 1.6
  EXPECT_NEAR((*d)[1], 0.14834174943487521, 1e-14);  // .4 ln .6 + .6 ln 1.8
  EXPECT_NEAR((*d)[2], 0.03397980735907956, 1e-14);  // .2 ln(2/3) + .4 ln(4/3)
  const auto choice = EntropyAmax(counts, std::vector<float>{0, 1, 2, 3, 4}, options);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 4);
  EXPECT_EQ(choice->amax, 4.0f);
  EXPECT_NEAR(choice->score, 0.03397980735907956, 1e-14);
}

TEST(EntropyAmaxTest, InfWhereTheLastBinIsEmptyButMassLiesBeyond) {
  const std::vector<uint64_t> counts = {0, 3, 0, 1};
  const auto d = KlDivergences(counts, {.num_bits = 2, .start_bin = 2});
  ASSERT_TRUE(d.ok());
  EXPECT_NEAR((*d)[0], 0.010239075859473604, 1e-14);
  EXPECT_EQ((*d)[1], kInf);
  EXPECT_NEAR((*d)[2], 0.0, 1e-15);
}

TEST(EntropyAmaxTest, LastNanCandidateWins) {
  // Below edges 2 and 3 every bin is empty: the quantized distribution is 0/0.
  const std::vector<uint64_t> counts = {0, 0, 0, 5};
  const SearchOptions options{.num_bits = 2, .start_bin = 2};
  const auto d = KlDivergences(counts, options);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(std::isnan((*d)[0]));
  EXPECT_TRUE(std::isnan((*d)[1]));
  EXPECT_NEAR((*d)[2], 0.0, 1e-15);
  const auto choice = EntropyAmax(counts, UnitEdges(4), options);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 3);
}

TEST(EntropyAmaxTest, LastOfEqualMinimaWins) {
  // Candidates 3 and 5 are both +inf; numpy's reversed argmin picks the later one.
  const std::vector<uint64_t> counts = {1, 1, 0, 1, 0, 1};
  const auto choice =
      EntropyAmax(counts, UnitEdges(6), {.num_bits = 2, .start_bin = 3, .stride = 2});
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 5);
  EXPECT_EQ(choice->score, kInf);
}

TEST(EntropyAmaxTest, MatchesTheReferenceTranscription) {
  const std::vector<uint64_t> counts = BumpyCounts(700);
  for (const SearchOptions options :
       {SearchOptions{.num_bits = 8, .start_bin = 128},
        SearchOptions{.num_bits = 4, .start_bin = 1, .stride = 3},
        SearchOptions{.num_bits = 8, .is_unsigned = true, .start_bin = 64, .stride = 2}}) {
    const int levels = 1 << (options.num_bits - 1 + (options.is_unsigned ? 1 : 0));
    const std::vector<double> want =
        NaiveDivergences(counts, levels, options.start_bin, options.stride);
    const auto got = KlDivergences(counts, options);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      if (std::isinf(want[k]) || std::isnan(want[k])) {
        EXPECT_EQ(std::isinf((*got)[k]), std::isinf(want[k])) << k;
        EXPECT_EQ(std::isnan((*got)[k]), std::isnan(want[k])) << k;
      } else {
        EXPECT_NEAR((*got)[k], want[k], 1e-11 * std::max(1.0, std::abs(want[k]))) << k;
      }
    }
  }
}

TEST(EntropyAmaxTest, StartBinBeyondTheHistogramIsAClearError) {
  // Field case: fewer bins than the default start_bin 128.
  const std::vector<uint64_t> counts(94, 1);
  const auto choice = EntropyAmax(counts, UnitEdges(94), {});
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(choice.status().message(), AllOf(HasSubstr("start_bin 128"), HasSubstr("94 bins")));
  EXPECT_TRUE(EntropyAmax(counts, UnitEdges(94), {.start_bin = 94}).ok());  // the last edge
}

TEST(EntropyAmaxTest, BadArgumentsAndEmptyHistograms) {
  const std::vector<uint64_t> counts(200, 1);
  const std::vector<float> edges = UnitEdges(200);
  EXPECT_EQ(EntropyAmax(counts, edges, {.stride = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EntropyAmax(counts, edges, {.start_bin = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EntropyAmax(counts, edges, {.num_bits = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EntropyAmax(counts, edges, {.num_bits = 17}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EntropyAmax(counts, UnitEdges(10), {}).status().code(),
            absl::StatusCode::kInvalidArgument);  // edges do not fit counts
  EXPECT_EQ(EntropyAmax({}, std::vector<float>{0.0f}, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(EntropyAmax(std::vector<uint64_t>(200, 0), edges, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(MseAmaxTest, HandComputedErrors) {
  // Two-bit grid (bound 1), centers 0.5 .. 3.5, one value at 0.5 and one at 3.5.
  const std::vector<uint64_t> counts = {1, 0, 0, 1};
  const std::vector<float> edges = {0, 1, 2, 3, 4};
  const SearchOptions options{.num_bits = 2, .start_bin = 0};
  const auto errors = MseErrors(counts, edges, options);
  ASSERT_TRUE(errors.ok()) << errors.status();
  ASSERT_EQ(errors->size(), 4u);
  EXPECT_NEAR((*errors)[0], 2.25, 1e-7);    // amax 0.5: 3.5 clips to 0.5, (3^2) / 4
  EXPECT_NEAR((*errors)[1], 1.0625, 1e-7);  // amax 1.5: 0.5 -> 0, 3.5 -> 1.5
  EXPECT_NEAR((*errors)[2], 0.3125, 1e-7);  // amax 2.5: 0.5 -> 0, 3.5 -> 2.5
  EXPECT_NEAR((*errors)[3], 0.0625, 1e-7);  // amax 3.5: only 0.5 -> 0 is off
  const auto choice = MseAmax(counts, edges, options);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 3);
  EXPECT_EQ(choice->amax, 3.5f);
}

TEST(MseAmaxTest, FirstOfEqualMinimaWins) {
  // Every candidate from 1 on rounds the one value (center 1) to 0: equal errors of 1/4.
  const std::vector<uint64_t> counts = {1, 0, 0, 0};
  const auto choice =
      MseAmax(counts, std::vector<float>{0, 2, 4, 6, 8}, {.num_bits = 2, .start_bin = 1});
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 1);
  EXPECT_EQ(choice->amax, 3.0f);
  EXPECT_DOUBLE_EQ(choice->score, 0.25);
}

TEST(MseAmaxTest, MatchesTheReferenceTranscription) {
  const std::vector<uint64_t> counts = BumpyCounts(900);
  std::vector<float> edges(901);
  for (size_t k = 0; k < edges.size(); ++k) edges[k] = static_cast<float>(k) * 0.0123f;
  for (const SearchOptions options :
       {SearchOptions{.num_bits = 8, .start_bin = 128},
        SearchOptions{.num_bits = 4, .start_bin = 0, .stride = 7},
        SearchOptions{.num_bits = 8, .is_unsigned = true, .start_bin = 5}}) {
    const float bound = static_cast<float>((1 << (options.num_bits - 1 + options.is_unsigned)) - 1);
    const std::vector<double> want =
        NaiveMse(counts, edges, bound, options.start_bin, options.stride);
    const auto got = MseErrors(counts, edges, options);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_NEAR((*got)[k], want[k], 1e-10 * want[k]) << k;
    }
  }
}

// Edges k * 10 / bins * scale in float32.
std::vector<float> ScaledEdges(size_t bins, double scale) {
  std::vector<float> edges(bins + 1);
  for (size_t k = 0; k < edges.size(); ++k) {
    edges[k] =
        static_cast<float>(static_cast<double>(k) * 10.0 / static_cast<double>(bins) * scale);
  }
  return edges;
}

TEST(MseAmaxTest, ChoiceDoesNotDependOnMagnitude) {
  // Field case: at 1e-36 every candidate amax is below fake_tensor_quant's 2^-24, and at 1e36
  // float32 squared errors overflow, so the reference ties every candidate; qcal searches such
  // histograms in power-of-two scaled units (mse_centers.h) and picks the ordinary bin.
  const std::vector<uint64_t> counts = BumpyCounts(2048);
  const SearchOptions options{.num_bits = 8, .start_bin = 128};
  const auto plain = MseAmax(counts, ScaledEdges(2048, 1.0), options);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_GT(plain->index, options.start_bin);  // a real optimum, not the first candidate
  // 3.3e37: a last edge of 3.3e38, whose top centers overflow as (a + b) / 2.
  for (const double scale : {1e-36, 1e-30, 1e30, 1e36, 3.3e37}) {
    const std::vector<float> edges = ScaledEdges(2048, scale);
    const auto choice = MseAmax(counts, edges, options);
    ASSERT_TRUE(choice.ok()) << scale << ": " << choice.status();
    EXPECT_EQ(choice->index, plain->index) << scale;
    EXPECT_TRUE(std::isfinite(choice->amax)) << scale;
    EXPECT_GT(choice->amax, edges[choice->index]) << scale;
    EXPECT_LT(choice->amax, edges[choice->index + 1]) << scale;
    EXPECT_GT(choice->score, 0.0) << scale;
    EXPECT_TRUE(std::isfinite(choice->score)) << scale;
  }
  // Power-of-two scales are exact: the same errors, scaled by the square.
  const auto plain_errors = MseErrors(counts, ScaledEdges(2048, 1.0), options);
  ASSERT_TRUE(plain_errors.ok());
  for (const int exponent : {-100, 100}) {
    std::vector<float> edges = ScaledEdges(2048, 1.0);
    for (float& e : edges) e = std::ldexp(e, exponent);
    const auto errors = MseErrors(counts, edges, options);
    ASSERT_TRUE(errors.ok()) << errors.status();
    ASSERT_EQ(errors->size(), plain_errors->size());
    for (size_t k = 0; k < errors->size(); ++k) {
      ASSERT_EQ((*errors)[k], std::ldexp((*plain_errors)[k], 2 * exponent)) << exponent << " " << k;
    }
    const auto choice = MseAmax(counts, edges, options);
    ASSERT_TRUE(choice.ok());
    EXPECT_EQ(choice->amax, std::ldexp(plain->amax, exponent));
  }
}

TEST(MseAmaxTest, StartBinMustBeACenterIndex) {
  const std::vector<uint64_t> counts(10, 1);
  const auto choice = MseAmax(counts, UnitEdges(10), {.start_bin = 10});
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(choice.status().message(), AllOf(HasSubstr("start_bin 10"), HasSubstr("10 bins")));
  EXPECT_TRUE(MseAmax(counts, UnitEdges(10), {.start_bin = 9}).ok());
  EXPECT_EQ(MseAmax(counts, UnitEdges(10), {.start_bin = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MseAmax(counts, UnitEdges(10), {.num_bits = 1}).status().code(),
            absl::StatusCode::kInvalidArgument);  // signed 1-bit: no positive level
  EXPECT_TRUE(
      MseAmax(counts, UnitEdges(10), {.num_bits = 1, .is_unsigned = true, .start_bin = 0}).ok());
  EXPECT_EQ(MseAmax(std::vector<uint64_t>(10, 0), UnitEdges(10), {.start_bin = 0}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(PercentileAmaxTest, FirstEdgeWhoseCdfReachesThePercentile) {
  const std::vector<uint64_t> counts = {1, 1, 2};  // cdf 0.25, 0.5, 1
  const std::vector<float> edges = {0, 1, 2, 3};
  auto choice = PercentileAmax(counts, edges, 50.0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 1);
  EXPECT_EQ(choice->amax, 1.0f);
  EXPECT_EQ(choice->score, 0.5);
  choice = PercentileAmax(counts, edges, 10.0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 0);
  choice = PercentileAmax(counts, edges, 100.0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 2);
  EXPECT_EQ(choice->amax, 2.0f);
}

TEST(PercentileAmaxTest, CdfShortOfOneByRoundingGivesTheLastEdge) {
  // Ten bins of 1/10: the double cdf sums to 0.9999999999999999, below 100%.
  const std::vector<uint64_t> counts(10, 1);
  const auto choice = PercentileAmax(counts, UnitEdges(10), 100.0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 10);
  EXPECT_EQ(choice->amax, 10.0f);
  EXPECT_LT(choice->score, 1.0);
}

TEST(PercentileAmaxTest, PercentileOutsideZeroToHundredIsRefused) {
  const std::vector<uint64_t> counts = {1, 1};
  const std::vector<float> edges = {0, 1, 2};
  for (const double p : {0.0, -1.0, 100.5, std::nan("")}) {
    const auto choice = PercentileAmax(counts, edges, p);
    EXPECT_EQ(choice.status().code(), absl::StatusCode::kInvalidArgument) << p;
    EXPECT_THAT(choice.status().message(), HasSubstr("percentile"));
  }
  EXPECT_EQ(PercentileAmax(std::vector<uint64_t>{0, 0}, edges, 99.0).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace qcal::kernels
