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
//
// FP8 E4M3 (options.format = kFp8E4M3): EntropyAmax, KlDivergences, MseAmax and MseErrors run
// fp8_search.h's searches instead, with the same arguments, candidates, tie rules and errors
// (num_bits is not checked): mse fake-quantizes the bin centers with E4M3 at each candidate's
// amax / 448 and scores the count-weighted squared error; entropy merges the bins whose centers
// E4M3 maps to one value where the int method merges 2^(num_bits-1) equal groups. Their costs
// differ from the int ones (fp8_search.h); the bit-for-bit notes below are the int searches'.
#ifndef QCAL_KERNELS_AMAX_SEARCH_H_
#define QCAL_KERNELS_AMAX_SEARCH_H_

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/quant_format.h"

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
  // Optional: a search polls it (from its worker threads, possibly at once) before any work
  // and then between candidates after every few thousand quantization levels or groups it
  // evaluates (search_cancel.h), and returns CANCELLED ("<method> search cancelled") soon after
  // it first returns true, without calling it again. Null: never cancelled. The caller keeps
  // it alive during the call. The CUDA twins poll it once, before their launches.
  const std::function<bool()>* cancelled = nullptr;
  // kFp8E4M3: mse and entropy score candidates by simulating E4M3 at scale amax / 448
  // (fp8_search.h has the construction and cost; num_bits and is_unsigned are then ignored);
  // percentile does not depend on the format.
  QuantFormat format = QuantFormat::kInt;
};

// KL-divergence search (TensorRT's entropy calibration, as pytorch-quantization implements it):
// the last minimum wins; if any divergence is NaN, the last NaN candidate wins. Each candidate
// costs O(2^(num_bits-1+unsigned)) after O(L) prefix sums, so 2048 bins take well under 1 ms.
// Errors: INVALID_ARGUMENT when num_bits is outside QuantBound's range, stride < 1, start_bin < 1
// or start_bin > L, or edges.size() != L + 1; FAILED_PRECONDITION for an empty histogram (no
// bins, or all counts 0); CANCELLED through options.cancelled.
absl::StatusOr<AmaxChoice> EntropyAmax(std::span<const uint64_t> counts,
                                       std::span<const float> edges, const SearchOptions& options);

// The divergence of every entropy candidate i = start_bin, start_bin + stride, ... <= L, in
// candidate order (+inf where the candidate's last bin is empty but mass lies beyond it, NaN
// where no bin below the candidate is occupied). Errors as EntropyAmax.
absl::StatusOr<std::vector<double>> KlDivergences(std::span<const uint64_t> counts,
                                                  const SearchOptions& options);

// Mean squared error of fake-quantizing the bin centers (narrow range, float32 as the
// reference), weighted by count and averaged over the L bins; the first minimum wins. amax is
// a bin center. The chosen index, amax and score are bit for bit those of scoring every
// candidate one center at a time in float32 and summing in double, as qcal always has
// (mse_amax_internal.h's MseAmaxQuadratic), but at a cost of O(L + candidates x min(levels,
// occupied bins)), levels = 2^(num_bits-1+unsigned), plus O(occupied bins) for each candidate
// left within those double sums' rounding of the minimum: a handful on ordinary histograms; in
// the worst case (many candidates whose sums are equal doubles because the smaller terms are
// absorbed, as with counts spanning 2^53) up to every candidate, today's O(candidates x
// occupied). mse_amax.cc has the design. Errors as EntropyAmax, with start_bin < 0 or
// start_bin >= L refused, and CANCELLED through options.cancelled.
absl::StatusOr<AmaxChoice> MseAmax(std::span<const uint64_t> counts, std::span<const float> edges,
                                   const SearchOptions& options);

// The error of every mse candidate (center indices start_bin, start_bin + stride, ... < L), in
// candidate order. Candidates with few occupied bins below them (at most 16 per quantization
// level) or an amax <= 2^-24 get the bits MseAmax would score them with; the others the sum
// level by level from double-double prefix sums, rounded to double: within 2^-52 relative,
// plus (i + 4) 2^-101 per level of sum w (a_q + c)^2 for the cancelling terms, of the exact sum
// of the reference's float32 terms, where MseAmax's one-at-a-time double sums are within
// (occupied bins / 8 + 11) 2^-53 relative of it. So this list's first minimum is MseAmax's
// choice except between candidates within that rounding. O(L + candidates x min(levels,
// occupied bins)). Errors as MseAmax.
absl::StatusOr<std::vector<double>> MseErrors(std::span<const uint64_t> counts,
                                              std::span<const float> edges,
                                              const SearchOptions& options);

// The first edge index i with cdf[i] >= percentile / 100, where cdf[i] = cdf[i-1] +
// counts[i] / total in double; i = L when no cdf value reaches it (rounding); amax is edges[i].
// Errors: INVALID_ARGUMENT unless 0 < percentile <= 100, or edges.size() != L + 1;
// FAILED_PRECONDITION for an empty histogram; CANCELLED through `cancelled` (as
// SearchOptions::cancelled, polled every 2^16 bins).
absl::StatusOr<AmaxChoice> PercentileAmax(std::span<const uint64_t> counts,
                                          std::span<const float> edges, double percentile,
                                          const std::function<bool()>* cancelled = nullptr);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_AMAX_SEARCH_H_
