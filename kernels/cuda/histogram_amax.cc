#include "kernels/cuda/histogram_amax.h"

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/amax_search_checks.h"
#include "kernels/cuda/amax_search.h"
#include "kernels/histogram_amax.h"
#include "kernels/quant_bound.h"

namespace qcal::kernels::cuda {

absl::StatusOr<AmaxChoice> HistogramAmax(const Histogram& hist, AmaxMethod method,
                                         const SearchOptions& search, double percentile) {
  if (hist.num_bins() == 0) {
    if (absl::Status s = CheckHistogramAmaxArguments(method, search, percentile); !s.ok()) return s;
    if (hist.total() == 0) {
      return absl::FailedPreconditionError("the histogram is empty: no values were collected");
    }
    return AmaxChoice{0.0f, 0, 0.0};
  }
  switch (method) {
    case AmaxMethod::kMax:
      if (hist.total() == 0) {
        return absl::FailedPreconditionError("the histogram is empty: no values were collected");
      }
      return AmaxChoice{hist.abs_max(), -1, hist.abs_max()};
    case AmaxMethod::kEntropy:
      return EntropyAmax(hist.context(), hist.DeviceCounts(), hist.Edges(), search);
    case AmaxMethod::kMse:
      return MseAmax(hist.context(), hist.DeviceCounts(), hist.Edges(), search);
    case AmaxMethod::kPercentile:
      return PercentileAmax(hist.context(), hist.DeviceCounts(), hist.Edges(), percentile);
  }
  return absl::InvalidArgumentError("unknown calibration method");
}

}  // namespace qcal::kernels::cuda
