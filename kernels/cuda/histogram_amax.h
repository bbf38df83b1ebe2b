// compute_amax of a device-resident Histogram by method name: the CUDA twin of
// kernels/histogram_amax.h (same rules, same errors), the searches running on the GPU.
//
//   auto choice = qcal::kernels::cuda::HistogramAmax(*hist, AmaxMethod::kEntropy, {}, 99.99);
#ifndef QCAL_KERNELS_CUDA_HISTOGRAM_AMAX_H_
#define QCAL_KERNELS_CUDA_HISTOGRAM_AMAX_H_

#include "absl/status/statusor.h"
#include "kernels/amax_search.h"
#include "kernels/cuda/histogram.h"
#include "kernels/histogram_amax.h"

namespace qcal::kernels::cuda {

// kMax returns hist.abs_max() with index -1; a histogram that has seen only zeros gives amax 0,
// index 0. Errors: INVALID_ARGUMENT for bad arguments (checked first, whatever the data);
// FAILED_PRECONDITION when no value was collected; INTERNAL for a CUDA failure.
absl::StatusOr<AmaxChoice> HistogramAmax(const Histogram& hist, AmaxMethod method,
                                         const SearchOptions& search,
                                         double percentile = kDefaultPercentile);

}  // namespace qcal::kernels::cuda

#endif  // QCAL_KERNELS_CUDA_HISTOGRAM_AMAX_H_
