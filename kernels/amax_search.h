// Amax searches over a histogram of |x|: entropy (KL divergence), mse and percentile, matching
// pytorch-quantization's HistogramCalibrator.compute_amax (see ../shared/golden/README.md for
// the exact rules: candidates, tie breaking, NaN divergences).
//
//   auto choice = qcal::kernels::EntropyAmax(hist.Counts(), hist.Edges(), {.num_bits = 8});
//   if (choice.ok()) use(choice->amax);
//
// `counts` has L bins, `edges` L + 1 float32 edges (edges[0] == 0).
#ifndef QCAL_KERNELS_AMAX_SEARCH_H_
#define QCAL_KERNELS_AMAX_SEARCH_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"

namespace qcal::kernels {

struct AmaxChoice {
  float amax = 0.0f;
  // Edge index (entropy, percentile) or bin-center index (mse) that gave amax.
  int64_t index = 0;
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
// the last minimum wins; if any divergence is NaN, the last NaN candidate wins.
// Errors: INVALID_ARGUMENT when start_bin > L (entropy) or >= L (mse), stride < 1, or
// num_bits out of [1, 16]; FAILED_PRECONDITION for an empty histogram.
absl::StatusOr<AmaxChoice> EntropyAmax(std::span<const uint64_t> counts,
                                       std::span<const float> edges, const SearchOptions& options);

// Mean squared error of fake-quantizing the bin centers, weighted by count; the first minimum
// wins. amax is a bin center. Errors as EntropyAmax.
absl::StatusOr<AmaxChoice> MseAmax(std::span<const uint64_t> counts, std::span<const float> edges,
                                   const SearchOptions& options);

// The first edge index i with cdf[i] >= percentile / 100 (cdf summed in double); amax is
// edges[i]. Errors: INVALID_ARGUMENT unless 0 < percentile <= 100; FAILED_PRECONDITION for an
// empty histogram.
absl::StatusOr<AmaxChoice> PercentileAmax(std::span<const uint64_t> counts,
                                          std::span<const float> edges, double percentile);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_AMAX_SEARCH_H_
