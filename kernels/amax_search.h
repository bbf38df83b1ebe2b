// Amax searches over a histogram of |x|: entropy (KL divergence), mse and percentile, matching
// pytorch-quantization's HistogramCalibrator.compute_amax (calib/histogram.py:
// _compute_amax_entropy, _compute_amax_mse, _compute_amax_percentile; see
// ../shared/golden/README.md for the exact rules: candidates, tie breaking, NaN divergences).
//
//   auto choice = qcal::kernels::EntropyAmax(hist.Counts(), hist.Edges(), {.num_bits = 8});
//   if (choice.ok()) use(choice->amax);
//
// `counts` has L bins, `edges` L + 1 float32 edges (edges[0] == 0 for qcal's histograms).
// Every function is deterministic: the same inputs give the same bits whatever the thread count.
#ifndef QCAL_KERNELS_AMAX_SEARCH_H_
#define QCAL_KERNELS_AMAX_SEARCH_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace qcal::kernels {

struct AmaxChoice {
  float amax = 0.0f;
  // Edge index (entropy, percentile) or bin-center index (mse) that gave amax.
  int64_t index = 0;
  // What the search scored at `index`: the KL divergence (entropy), the mean squared error
  // (mse), the cdf (percentile; the last cdf value when no edge reached the percentile).
  double score = 0.0;
};

struct SearchOptions {
  int num_bits = 8;
  bool is_unsigned = false;
  // First candidate and the step between candidates (entropy: edge indices start_bin..L;
  // mse: center indices start_bin..L-1).
  int start_bin = 128;
  int stride = 1;
};

// KL-divergence search (TensorRT's entropy calibration, as pytorch-quantization implements it):
// the last minimum wins; if any divergence is NaN, the last NaN candidate wins. Each candidate
// costs O(2^(num_bits-1+unsigned)) after O(L) prefix sums, so 2048 bins take well under 1 ms.
// Errors: INVALID_ARGUMENT when num_bits is outside QuantBound's range, stride < 1, start_bin < 1
// or start_bin > L, or edges.size() != L + 1; FAILED_PRECONDITION for an empty histogram (no
// bins, or all counts 0).
absl::StatusOr<AmaxChoice> EntropyAmax(std::span<const uint64_t> counts,
                                       std::span<const float> edges, const SearchOptions& options);

// The divergence of every entropy candidate i = start_bin, start_bin + stride, ... <= L, in
// candidate order (+inf where the candidate's last bin is empty but mass lies beyond it, NaN
// where no bin below the candidate is occupied). Errors as EntropyAmax.
absl::StatusOr<std::vector<double>> KlDivergences(std::span<const uint64_t> counts,
                                                  const SearchOptions& options);

// Mean squared error of fake-quantizing the bin centers (narrow range, float32 as the
// reference), weighted by count and averaged over the L bins; the first minimum wins. amax is
// a bin center. Errors as EntropyAmax, with start_bin < 0 or start_bin >= L refused.
absl::StatusOr<AmaxChoice> MseAmax(std::span<const uint64_t> counts, std::span<const float> edges,
                                   const SearchOptions& options);

// The error of every mse candidate (center indices start_bin, start_bin + stride, ... < L), in
// candidate order, accumulated in double. Errors as MseAmax.
absl::StatusOr<std::vector<double>> MseErrors(std::span<const uint64_t> counts,
                                              std::span<const float> edges,
                                              const SearchOptions& options);

// The first edge index i with cdf[i] >= percentile / 100, where cdf[i] = cdf[i-1] +
// counts[i] / total in double; i = L when no cdf value reaches it (rounding); amax is edges[i].
// Errors: INVALID_ARGUMENT unless 0 < percentile <= 100, or edges.size() != L + 1;
// FAILED_PRECONDITION for an empty histogram.
absl::StatusOr<AmaxChoice> PercentileAmax(std::span<const uint64_t> counts,
                                          std::span<const float> edges, double percentile);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_AMAX_SEARCH_H_
