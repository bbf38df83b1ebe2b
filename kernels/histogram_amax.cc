#include "kernels/histogram_amax.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/amax_search_checks.h"
#include "kernels/quant_bound.h"

namespace qcal::kernels {

absl::Status CheckHistogramAmaxArguments(AmaxMethod method, const SearchOptions& search,
                                         double percentile) {
  constexpr int64_t kAnyBins = INT64_MAX;  // no upper limit on start_bin without bins
  switch (method) {
    case AmaxMethod::kMax:
      return absl::OkStatus();
    case AmaxMethod::kEntropy:
    case AmaxMethod::kMse: {
      absl::StatusOr<float> bound = QuantBound(search.num_bits, search.is_unsigned);
      if (!bound.ok()) return bound.status();
      const bool entropy = method == AmaxMethod::kEntropy;
      return CheckCandidates(entropy ? "entropy" : "mse", search.start_bin, search.stride,
                             entropy ? 1 : 0, kAnyBins, 0);
    }
    case AmaxMethod::kPercentile:
      return CheckPercentile(percentile);
  }
  return absl::OkStatus();
}

absl::StatusOr<AmaxMethod> ParseAmaxMethod(std::string_view name) {
  if (name == "max") return AmaxMethod::kMax;
  if (name == "entropy") return AmaxMethod::kEntropy;
  if (name == "mse") return AmaxMethod::kMse;
  if (name == "percentile") return AmaxMethod::kPercentile;
  return absl::InvalidArgumentError(absl::StrCat("unknown calibration method '", std::string(name),
                                                 "' (expected max, entropy, mse or percentile)"));
}

std::string_view AmaxMethodName(AmaxMethod method) {
  switch (method) {
    case AmaxMethod::kMax:
      return "max";
    case AmaxMethod::kEntropy:
      return "entropy";
    case AmaxMethod::kMse:
      return "mse";
    case AmaxMethod::kPercentile:
      return "percentile";
  }
  return "unknown";
}

absl::StatusOr<AmaxChoice> HistogramAmax(const Histogram& hist, AmaxMethod method,
                                         const SearchOptions& search, double percentile) {
  if (hist.Counts().empty()) {
    // Nothing binned yet: either nothing at all, or only zeros (amax 0, whatever the method).
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
      return EntropyAmax(hist.Counts(), hist.Edges(), search);
    case AmaxMethod::kMse:
      return MseAmax(hist.Counts(), hist.Edges(), search);
    case AmaxMethod::kPercentile:
      return PercentileAmax(hist.Counts(), hist.Edges(), percentile);
  }
  return absl::InvalidArgumentError("unknown calibration method");
}

}  // namespace qcal::kernels
