// compute_amax of a collected Histogram by name: pytorch-quantization's
// HistogramCalibrator.compute_amax(method, start_bin=, stride=, percentile=), plus "max" (the
// exact running max of |x|), in one place for every caller.
//
//   auto method = qcal::kernels::ParseAmaxMethod("entropy");
//   auto choice = qcal::kernels::HistogramAmax(hist, *method, {.num_bits = 8}, 99.99);
#ifndef QCAL_KERNELS_HISTOGRAM_AMAX_H_
#define QCAL_KERNELS_HISTOGRAM_AMAX_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "kernels/amax_search.h"
#include "kernels/histogram.h"

namespace qcal::kernels {

enum class AmaxMethod { kMax, kEntropy, kMse, kPercentile };

// "max", "entropy", "mse", "percentile"; INVALID_ARGUMENT for anything else.
absl::StatusOr<AmaxMethod> ParseAmaxMethod(std::string_view name);
std::string_view AmaxMethodName(AmaxMethod method);

// The default percentile of pytorch-quantization's compute_amax.
inline constexpr double kDefaultPercentile = 99.99;

// The arguments' checks of HistogramAmax, without a histogram (start_bin has no upper limit
// here): those of QuantBound and CheckCandidates for entropy and mse, CheckPercentile for
// percentile. Shared with the CUDA twin so both refuse the same arguments alike.
absl::Status CheckHistogramAmaxArguments(AmaxMethod method, const SearchOptions& search,
                                         double percentile);

// amax of `hist` by `method`. `search` applies to entropy and mse, `percentile` to percentile.
// kMax returns hist.abs_max() with index -1. A histogram that has seen only zeros (no bins yet)
// gives amax 0, index 0, for every method. Errors: the search's INVALID_ARGUMENT for bad
// arguments (checked first, whatever the data); FAILED_PRECONDITION when no value was
// collected.
absl::StatusOr<AmaxChoice> HistogramAmax(const Histogram& hist, AmaxMethod method,
                                         const SearchOptions& search,
                                         double percentile = kDefaultPercentile);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_HISTOGRAM_AMAX_H_
