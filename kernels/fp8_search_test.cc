// The mse and entropy searches with SearchOptions::format = kFp8E4M3 (fp8_search.h), against
// brute-force references written here from the definitions: mse fake-quantizes every center
// through FakeTensorQuant; entropy builds p and q bin by bin as pytorch-quantization's
// _compute_amax_entropy does, with E4M3's groups.
#include "kernels/fp8_search.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/amax_search.h"
#include "kernels/fake_quant.h"
#include "kernels/fp8_e4m3.h"
#include "kernels/fp8_runs.h"
#include "kernels/mse_amax_internal.h"

namespace qcal::kernels {
namespace {

constexpr SearchOptions kFp8Mse = {.start_bin = 0, .format = QuantFormat::kFp8E4M3};

std::vector<float> UniformEdges(int bins, float width) {
  std::vector<float> edges(bins + 1);
  for (int k = 0; k <= bins; ++k) edges[k] = static_cast<float>(k) * width;
  return edges;
}

// A bell with a long sparse tail, from a fixed linear congruential sequence.
std::vector<uint64_t> TailedCounts(int bins, uint64_t seed) {
  std::vector<uint64_t> counts(bins, 0);
  uint64_t state = seed;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (int k = 0; k < bins; ++k) {
    const double x = static_cast<double>(k) / bins;
    const double bell = 1e5 * std::exp(-x * x * 60.0);
    counts[k] = static_cast<uint64_t>(bell) + (next() % 7 == 0 ? next() % 5 : 0);
  }
  return counts;
}

// sum_k w_k (fake(c_k) - c_k)^2 / L with fake from FakeTensorQuant (FP8) at amax = c_i.
std::vector<double> BruteMse(const std::vector<uint64_t>& counts, const std::vector<float>& edges,
                             int start_bin, int stride) {
  const int bins = static_cast<int>(counts.size());
  std::vector<float> centers(bins);
  for (int k = 0; k < bins; ++k) centers[k] = (edges[k + 1] + edges[k]) / 2.0f;
  const std::vector<int64_t> shape = {bins};
  const std::vector<int64_t> scalar = {};
  std::vector<double> errors;
  for (int i = start_bin; i < bins; i += stride) {
    const float amax = centers[i];
    const auto fake =
        FakeTensorQuant({centers, shape}, {{&amax, 1}, scalar}, {.format = QuantFormat::kFp8E4M3});
    EXPECT_TRUE(fake.ok());
    double sum = 0.0;
    for (int k = 0; k < bins; ++k) {
      if (counts[k] == 0) continue;
      const double d = static_cast<double>(fake->data[k]) - static_cast<double>(centers[k]);
      sum += static_cast<double>(counts[k]) * (d * d);
    }
    errors.push_back(sum / bins);
  }
  return errors;
}

int64_t FirstMin(const std::vector<double>& v) {
  int64_t best = 0;
  for (int64_t k = 1; k < static_cast<int64_t>(v.size()); ++k) {
    if (v[k] < v[best]) best = k;
  }
  return best;
}

int64_t LastMin(const std::vector<double>& v) {
  int64_t best = static_cast<int64_t>(v.size()) - 1;
  for (int64_t k = best - 1; k >= 0; --k) {
    if (v[k] < v[best]) best = k;
  }
  return best;
}

TEST(Fp8SearchTest, MseOfOneSpikeChoosesItsOwnCenter) {
  // Every count in bin 40 (center 10.125): amax = 10.125 maps it to 448 exactly (error 0);
  // every smaller candidate clips it. The first zero wins.
  const std::vector<float> edges = UniformEdges(64, 0.25f);
  std::vector<uint64_t> counts(64, 0);
  counts[40] = 1000;
  const auto choice = MseAmax(counts, edges, kFp8Mse);
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->index, 40);
  EXPECT_EQ(choice->amax, 10.125f);
  EXPECT_EQ(choice->score, 0.0);
  const auto errors = MseErrors(counts, edges, kFp8Mse);
  ASSERT_TRUE(errors.ok());
  EXPECT_GT((*errors)[39], 0.0);
  // The int search scores candidate 41 differently (its grid is finer there): FP8 is simulated.
  const auto int_errors = MseErrors(counts, edges, {.start_bin = 0});
  ASSERT_TRUE(int_errors.ok());
  EXPECT_NE((*errors)[41], (*int_errors)[41]);
}

TEST(Fp8SearchTest, MseMatchesFakeQuantizingEveryCenter) {
  const std::vector<float> edges = UniformEdges(512, 1.0f / 64.0f);
  const std::vector<uint64_t> counts = TailedCounts(512, 17);
  for (const int stride : {1, 3}) {
    const SearchOptions options = {
        .start_bin = 20, .stride = stride, .format = QuantFormat::kFp8E4M3};
    const std::vector<double> brute = BruteMse(counts, edges, 20, stride);
    const auto errors = MseErrors(counts, edges, options);
    ASSERT_TRUE(errors.ok()) << errors.status();
    ASSERT_EQ(errors->size(), brute.size());
    for (size_t k = 0; k < brute.size(); ++k) EXPECT_EQ((*errors)[k], brute[k]) << k;
    const auto choice = MseAmax(counts, edges, options);
    ASSERT_TRUE(choice.ok());
    const int64_t best = FirstMin(brute);
    EXPECT_EQ(choice->index, 20 + best * stride);
    EXPECT_EQ(choice->score, brute[best]);
    EXPECT_EQ(choice->amax, (edges[choice->index] + edges[choice->index + 1]) / 2.0f);

    // The int search's amax, scored under E4M3, is never better than FP8's own choice.
    const auto int_choice = MseAmax(counts, edges, {.start_bin = 20, .stride = stride});
    ASSERT_TRUE(int_choice.ok());
    EXPECT_LE(choice->score, brute[(int_choice->index - 20) / stride]);
  }
}

TEST(Fp8SearchTest, MseByRunsAgreesWithBinByBin) {
  // What a histogram beyond kFp8MseDirectBins occupied bins gets, forced here on smaller ones.
  for (const uint64_t seed : {1, 2, 3}) {
    const int bins = 1024 * static_cast<int>(seed);
    const std::vector<float> edges = UniformEdges(bins, 3.0f / static_cast<float>(bins));
    const std::vector<uint64_t> counts = TailedCounts(bins, seed);
    const SearchOptions options = {.start_bin = 64, .format = QuantFormat::kFp8E4M3};
    const auto direct = internal::Fp8MseErrorsWith(counts, edges, options, 1 << 30);
    const auto runs = internal::Fp8MseErrorsWith(counts, edges, options, 0);
    ASSERT_TRUE(direct.ok() && runs.ok());
    ASSERT_EQ(direct->size(), runs->size());
    for (size_t k = 0; k < direct->size(); ++k) {
      EXPECT_NEAR((*runs)[k], (*direct)[k], 1e-12 * (*direct)[k]) << seed << " " << k;
    }
    EXPECT_EQ(FirstMin(*runs), FirstMin(*direct)) << seed;
    const auto choice = internal::Fp8MseAmax(counts, edges, options, 0);
    ASSERT_TRUE(choice.ok());
    EXPECT_EQ(choice->index, 64 + FirstMin(*runs));
  }
}

TEST(Fp8SearchTest, RunEndIsRightWhateverTheGuess) {
  // A non-decreasing code over 40 bins, runs of uneven length.
  const std::vector<float> codes = {0, 0, 1, 2, 2, 2, 2, 2, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                    4, 4, 5, 6, 7, 7, 8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 10};
  const int64_t n = static_cast<int64_t>(codes.size());
  auto code = [&](int64_t k) { return codes[k]; };
  for (int64_t begin = 0; begin < n; ++begin) {
    int64_t want = begin + 1;
    while (want < n && codes[want] == codes[begin]) ++want;
    std::vector<double> guesses = {-1e300, -1.0, 0.0, 1e300, std::nan(""), INFINITY, -INFINITY};
    for (int64_t g = 0; g <= n + 2; ++g) guesses.push_back(static_cast<double>(g));
    for (const double g : guesses) {
      EXPECT_EQ(internal::Fp8RunEnd(begin, n, codes[begin], g, code), want)
          << "begin " << begin << " guess " << g;
    }
  }
  EXPECT_EQ(internal::Fp8UpperMidpoint(1.0f), 1.0625);
  EXPECT_EQ(internal::Fp8UpperMidpoint(0.0f), 0x1p-10);
  EXPECT_EQ(internal::Fp8UpperMidpoint(416.0f), 432.0);
  EXPECT_EQ(internal::Fp8UpperMidpoint(448.0f), INFINITY);
}

// pytorch-quantization's _compute_amax_entropy for one candidate, bin by bin, with the
// quantization groups of E4M3 (bins whose centers round to one E4M3 value at amax edges[i]).
double BruteKl(std::vector<uint64_t> counts, int64_t i) {
  if (counts.size() > 1) counts[0] = counts[1];
  std::vector<double> p(counts.begin(), counts.begin() + i);
  double beyond = 0.0;
  for (size_t j = i; j < counts.size(); ++j) beyond += static_cast<double>(counts[j]);
  p[i - 1] += beyond;
  std::vector<double> q(i, 0.0);
  for (int64_t begin = 0; begin < i;) {
    auto code = [&](int64_t j) {
      return RoundToFp8E4M3(static_cast<float>((j + 0.5) * 448.0 / static_cast<double>(i)));
    };
    int64_t end = begin;
    double group = 0.0;
    int occupied = 0;
    while (end < i && code(end) == code(begin)) {
      group += static_cast<double>(counts[end]);
      occupied += counts[end] != 0 ? 1 : 0;
      ++end;
    }
    for (int64_t j = begin; j < end; ++j) {
      if (counts[j] != 0) q[j] = group / occupied;
    }
    begin = end;
  }
  double p_sum = 0.0;
  double q_sum = 0.0;
  for (int64_t j = 0; j < i; ++j) {
    p_sum += p[j];
    q_sum += q[j];
  }
  if (q_sum == 0.0) return std::numeric_limits<double>::quiet_NaN();
  double d = 0.0;
  for (int64_t j = 0; j < i; ++j) {
    if (p[j] == 0.0) continue;
    if (q[j] == 0.0) return std::numeric_limits<double>::infinity();
    d += p[j] / p_sum * std::log((p[j] / p_sum) / (q[j] / q_sum));
  }
  return d;
}

TEST(Fp8SearchTest, EntropyMatchesTheBinByBinDefinition) {
  const int bins = 768;
  const std::vector<float> edges = UniformEdges(bins, 1.0f / 128.0f);
  const std::vector<uint64_t> counts = TailedCounts(bins, 5);
  const SearchOptions options = {.start_bin = 1, .stride = 1, .format = QuantFormat::kFp8E4M3};
  const auto divergences = KlDivergences(counts, options);
  ASSERT_TRUE(divergences.ok()) << divergences.status();
  ASSERT_EQ(divergences->size(), static_cast<size_t>(bins));
  std::vector<double> brute;
  for (int i = 1; i <= bins; ++i) brute.push_back(BruteKl(counts, i));
  int infinite = 0;
  for (int k = 0; k < bins; ++k) {
    if (std::isinf(brute[k])) {
      ++infinite;
      EXPECT_EQ((*divergences)[k], brute[k]) << k;
    } else {
      EXPECT_NEAR((*divergences)[k], brute[k], 1e-9 * std::max(1.0, std::fabs(brute[k]))) << k;
    }
  }
  EXPECT_GT(infinite, 0);  // the sparse tail has empty bins with mass beyond them
  const auto choice = EntropyAmax(counts, edges, options);
  ASSERT_TRUE(choice.ok());
  const int64_t best = LastMin(brute);
  EXPECT_EQ(choice->index, 1 + best);
  EXPECT_EQ(choice->amax, edges[choice->index]);
  // The int method's groups differ from E4M3's: the divergences do too.
  const auto int_divergences = KlDivergences(counts, {.start_bin = 1});
  ASSERT_TRUE(int_divergences.ok());
  EXPECT_NE((*int_divergences)[bins - 1], (*divergences)[bins - 1]);
}

TEST(Fp8SearchTest, EntropyOfDistinctCodesHasZeroDivergence) {
  // 8 bins: at the last edge the centers map to 28, 84, 140, ..., 420, which E4M3 keeps apart
  // (28, 80, 144, 192, 256, 320, 352, 416), so q = p there; every earlier candidate but the
  // first (one bin: p = q = 1) folds mass into a bin q does not raise.
  const std::vector<uint64_t> counts = {3, 5, 9, 4, 7, 2, 6, 1};
  const std::vector<float> edges = UniformEdges(8, 1.0f);
  const auto choice = EntropyAmax(counts, edges, {.start_bin = 2, .format = QuantFormat::kFp8E4M3});
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->index, 8);
  EXPECT_NEAR(choice->score, 0.0, 1e-12);
  const auto divergences = KlDivergences(counts, {.start_bin = 2, .format = QuantFormat::kFp8E4M3});
  ASSERT_TRUE(divergences.ok());
  ASSERT_EQ(divergences->size(), 7u);
  for (int k = 0; k < 6; ++k) EXPECT_GT((*divergences)[k], 1e-6) << k;
}

TEST(Fp8SearchTest, SameBitsFromManyThreadsAtOnce) {
  const std::vector<float> edges = UniformEdges(2048, 1.0f / 256.0f);
  const std::vector<uint64_t> counts = TailedCounts(2048, 99);
  const SearchOptions mse = {.start_bin = 128, .format = QuantFormat::kFp8E4M3};
  const SearchOptions kl = {.start_bin = 128, .format = QuantFormat::kFp8E4M3};
  const auto mse_once = MseErrors(counts, edges, mse);
  const auto kl_once = KlDivergences(counts, kl);
  ASSERT_TRUE(mse_once.ok());
  ASSERT_TRUE(kl_once.ok());
  // The same bits as scoring every candidate one at a time in order.
  EXPECT_EQ(*mse_once, BruteMse(counts, edges, 128, 1));
  std::vector<std::vector<double>> mse_runs(4), kl_runs(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      mse_runs[t] = *MseErrors(counts, edges, mse);
      kl_runs[t] = *KlDivergences(counts, kl);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(mse_runs[t], *mse_once);
    EXPECT_EQ(kl_runs[t], *kl_once);
  }
}

TEST(Fp8SearchTest, IgnoresNumBitsAndKeepsTheOtherErrors) {
  const std::vector<float> edges = UniformEdges(64, 0.5f);
  const std::vector<uint64_t> counts = TailedCounts(64, 3);
  const SearchOptions odd = {
      .num_bits = 99, .is_unsigned = true, .start_bin = 8, .format = QuantFormat::kFp8E4M3};
  const SearchOptions plain = {.start_bin = 8, .format = QuantFormat::kFp8E4M3};
  EXPECT_EQ(*MseErrors(counts, edges, odd), *MseErrors(counts, edges, plain));
  EXPECT_EQ(*KlDivergences(counts, odd), *KlDivergences(counts, plain));
  // num_bits 99 is refused by the int searches.
  EXPECT_EQ(MseAmax(counts, edges, {.num_bits = 99}).status().code(),
            absl::StatusCode::kInvalidArgument);

  SearchOptions beyond = plain;
  beyond.start_bin = 64;
  EXPECT_EQ(MseAmax(counts, edges, beyond).status().code(), absl::StatusCode::kInvalidArgument);
  beyond.start_bin = 65;
  EXPECT_EQ(EntropyAmax(counts, edges, beyond).status().code(), absl::StatusCode::kInvalidArgument);
  SearchOptions zero_stride = plain;
  zero_stride.stride = 0;
  EXPECT_EQ(MseAmax(counts, edges, zero_stride).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<uint64_t> empty(64, 0);
  EXPECT_EQ(MseAmax(empty, edges, plain).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(EntropyAmax(empty, edges, plain).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const std::vector<float> short_edges(10, 1.0f);
  EXPECT_EQ(MseAmax(counts, short_edges, plain).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EntropyAmax(counts, short_edges, plain).status().code(),
            absl::StatusCode::kInvalidArgument);

  const std::function<bool()> stop = [] { return true; };
  SearchOptions cancelled = plain;
  cancelled.cancelled = &stop;
  EXPECT_EQ(MseAmax(counts, edges, cancelled).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(EntropyAmax(counts, edges, cancelled).status().code(), absl::StatusCode::kCancelled);

  // The int-only internal searches refuse FP8 rather than answer for int.
  EXPECT_EQ(internal::MseAmaxQuadratic(counts, edges, plain).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(internal::MseAmaxWithStats(counts, edges, plain, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qcal::kernels
