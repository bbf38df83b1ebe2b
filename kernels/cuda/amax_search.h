// Entropy, mse and percentile amax searches on the GPU: the CUDA twins of kernels/amax_search.h
// (pytorch-quantization's HistogramCalibrator.compute_amax), with the same arguments, rules,
// errors and chosen index.
//
//   auto choice = qcal::kernels::cuda::EntropyAmax(*gpu, hist->DeviceCounts(), hist->Edges(),
//                                                  {.num_bits = 8});
//
// `counts` (L bins) may live in device or host memory (a host span is copied over first);
// `edges` (L + 1 float32) are host memory. What runs where:
//   entropy     prefix sums of h, h ln h and occupied bins in one block; then one warp per
//               candidate, its lanes over the 2^(num_bits-1) quantization groups.
//   mse         the centers' suffix sums and the occupied bins compacted in one block; then one
//               warp per candidate over the occupied bins below it, each center fake-quantized
//               in float32 with the reference's roundings.
//   percentile  every counts[i] / total in parallel; the running cdf is then added up in bin
//               order by one thread, since the first index whose cdf reaches the percentile
//               depends on every rounding of that sequential sum (parallel sums could move it).
// The winner (entropy: last NaN else last minimum; mse: first minimum) is picked on the host
// from the copied-back scores, by the rules of the CPU twin. The mse twin keeps the one-by-one
// scoring (O(candidates x occupied bins), one warp per candidate), so it agrees with the CPU's
// bounded search (kernels/mse_amax.cc) to within the double sums' rounding, not bit for bit.
// SearchOptions::cancelled is polled once, after the checks and before the launches (CANCELLED
// then); launched kernels run to completion. PercentileAmax takes no hook.
//
// FP8 E4M3 (SearchOptions::format = kFp8E4M3): entropy and mse run on the host, through
// kernels/amax_search.h's FP8 searches (kernels/fp8_search.h), with the counts copied back from
// the device first; results are the CPU's bit for bit, and `cancelled` is polled as there. There
// is no GPU version of them yet. Percentile does not depend on the format.
//
// Scores agree with the CPU twin to about 1e-13 relative (they are summed in another order and
// use CUDA's log), percentile results bit for bit. Counts are exact below 2^53 in total.
#ifndef QCAL_KERNELS_CUDA_AMAX_SEARCH_H_
#define QCAL_KERNELS_CUDA_AMAX_SEARCH_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/amax_search.h"
#include "kernels/cuda/context.h"

namespace qcal::kernels::cuda {

// Errors as kernels::EntropyAmax (INVALID_ARGUMENT, FAILED_PRECONDITION), and INTERNAL for a
// CUDA failure.
absl::StatusOr<AmaxChoice> EntropyAmax(const Context& context, std::span<const uint64_t> counts,
                                       std::span<const float> edges, const SearchOptions& options);

// The divergence of every entropy candidate, in candidate order; errors as EntropyAmax.
absl::StatusOr<std::vector<double>> KlDivergences(const Context& context,
                                                  std::span<const uint64_t> counts,
                                                  const SearchOptions& options);

// Errors as kernels::MseAmax, and INTERNAL for a CUDA failure.
absl::StatusOr<AmaxChoice> MseAmax(const Context& context, std::span<const uint64_t> counts,
                                   std::span<const float> edges, const SearchOptions& options);

// The error of every mse candidate, in candidate order; errors as MseAmax.
absl::StatusOr<std::vector<double>> MseErrors(const Context& context,
                                              std::span<const uint64_t> counts,
                                              std::span<const float> edges,
                                              const SearchOptions& options);

// Errors as kernels::PercentileAmax, and INTERNAL for a CUDA failure.
absl::StatusOr<AmaxChoice> PercentileAmax(const Context& context, std::span<const uint64_t> counts,
                                          std::span<const float> edges, double percentile);

}  // namespace qcal::kernels::cuda

#endif  // QCAL_KERNELS_CUDA_AMAX_SEARCH_H_
