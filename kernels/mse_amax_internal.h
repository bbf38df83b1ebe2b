// Internals of the mse search (kernels/mse_amax.cc), shared with its tests and benchmark: the
// reference's per-candidate scorer, which the bounded search uses to settle near-ties, and the
// whole O(candidates x occupied bins) search built on it, kept as the reference the bounded
// search must reproduce bit for bit.
//
//   MseTables t = BuildMseTables(counts, centers);
//   double error = CandidateError(t, i, bound, lo) / bins;  // today's bits for candidate i
#ifndef QCAL_KERNELS_MSE_AMAX_INTERNAL_H_
#define QCAL_KERNELS_MSE_AMAX_INTERNAL_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/amax_search.h"

namespace qcal::kernels::internal {

inline constexpr float kMseZeroAmax = 0x1p-24f;  // fake_tensor_quant's epsilon

// The histogram reorganised for CandidateError.
struct MseTables {
  std::vector<float> centers;           // per bin (ascending for qcal's histograms)
  std::vector<float> occupied_centers;  // bins with a count, in bin order
  std::vector<double> occupied_weights;
  std::vector<int64_t> occupied_below;  // per bin i: occupied bins with index < i
  // Sums over bins k >= i of w, w c and w c^2 (accumulated from the top), L + 1 entries.
  std::vector<double> suffix_w, suffix_wc, suffix_wcc;
};

// `centers`: L centers (mse_centers.h), `counts` L counts.
MseTables BuildMseTables(std::span<const uint64_t> counts, std::vector<float> centers);

// The level of center c under scale s = bound / amax, as fake_tensor_quant computes it in
// float32: torch.round(c * s) (half to even), clamped to [lo, bound]. Non-decreasing in c.
// Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to the nearest
// integer, ties to even (the default rounding mode); inputs are first limited to +-2^22, far
// beyond any bound (<= 2^16 - 1), so clamping to the bound is unaffected.
inline float MseLevel(float c, float scale, float lo, float bound) {
  constexpr float kRoundMagic = 0x1.8p23f;
  constexpr float kRoundLimit = 0x1p22f;
  float t = c * scale;
  t = t < -kRoundLimit ? -kRoundLimit : t;
  t = t > kRoundLimit ? kRoundLimit : t;
  float q = (t + kRoundMagic) - kRoundMagic;
  q = q < lo ? lo : q;
  q = q > bound ? bound : q;
  return q;
}

// The summed squared error of candidate center index i, as the search has always computed it:
// below + clipped, where `clipped` (ClippedError, O(1)) is v^2 W - 2 v S1 + S2 from the suffix
// sums at the split (i, or 0 for an amax <= 2^-24), and `below` sums w_k (fake(c_k) - c_k)^2
// over the occupied bins under the split one by one (O(occupied bins below i)), in eight lanes
// of every eighth term then a scalar tail. The search divides it by L.
double CandidateError(const MseTables& t, int64_t i, float bound, float lo);
double ClippedError(const MseTables& t, int64_t i, float bound);

// The checks every int mse search makes (amax_search.h's errors); *bound is the grid's bound.
// INVALID_ARGUMENT for options.format != kInt: the functions of this header are int only
// (MseAmax and MseErrors route FP8 to fp8_search.h first).
absl::Status CheckMseArguments(std::span<const uint64_t> counts, std::span<const float> edges,
                               const SearchOptions& options, float* bound);

// Today's search, O(candidates x occupied bins): MseErrors of amax_search.h with every
// candidate scored by CandidateError, and the MseAmax that takes their first minimum. Kept as
// the reference of the bounded search (tests, bench); no cancellation.
absl::StatusOr<std::vector<double>> MseErrorsQuadratic(std::span<const uint64_t> counts,
                                                       std::span<const float> edges,
                                                       const SearchOptions& options);
absl::StatusOr<AmaxChoice> MseAmaxQuadratic(std::span<const uint64_t> counts,
                                            std::span<const float> edges,
                                            const SearchOptions& options);

// What the bounded search did (MseAmax's tiers, see mse_amax.cc), for tests and the benchmark.
struct MseSearchStats {
  int64_t candidates = 0;
  int64_t direct = 0;      // scored by CandidateError from the start (few bins below)
  int64_t pruned = 0;      // ruled out by their clipped part alone
  int64_t coarse = 0;      // scored with double prefix sums
  int64_t fine = 0;        // of those, rescored with double-double prefix sums
  int64_t rescored = 0;    // of those, settled by CandidateError
  bool quadratic = false;  // centers not ascending, negative or not finite: all by CandidateError
};

// Up to this many occupied bins per quantization level a candidate is scored by CandidateError
// from the start: a level costs about as much as 16 bins scored one by one (vectorised), and
// the result is exact.
inline constexpr int64_t kMseDirectBinsPerLevel = 16;

// MseAmax of amax_search.h, and what it did in *stats (may be null); tests lower
// direct_bins_per_level (at least 1: the tiers cost a candidate its levels) to send more
// candidates through the tiers.
absl::StatusOr<AmaxChoice> MseAmaxWithStats(std::span<const uint64_t> counts,
                                            std::span<const float> edges,
                                            const SearchOptions& options, MseSearchStats* stats,
                                            int64_t direct_bins_per_level = kMseDirectBinsPerLevel);

}  // namespace qcal::kernels::internal

#endif  // QCAL_KERNELS_MSE_AMAX_INTERNAL_H_
