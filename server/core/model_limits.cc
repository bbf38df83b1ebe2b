#include "server/core/model_limits.h"

#include "absl/strings/str_cat.h"
#include "server/base/names.h"

namespace qcal::server {

absl::Status CheckSpecLimits(const QuantizerSpec& spec, const ModelLimits& limits) {
  if (spec.calibrator == CalibratorKind::kHistogram && spec.num_bins > limits.max_num_bins) {
    const std::string who = spec.name.empty()
                                ? "default descriptor"
                                : absl::StrCat("quantizer '", ShortForMessage(spec.name), "'");
    return absl::ResourceExhaustedError(absl::StrCat(who, ": num_bins ", spec.num_bins,
                                                     " is more than the server's --max-num-bins ",
                                                     limits.max_num_bins));
  }
  return absl::OkStatus();
}

absl::Status CheckQuantizerCount(int64_t count, const ModelLimits& limits,
                                 absl::string_view where) {
  if (count <= limits.max_quantizers) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat(where, " would hold ", count,
                   " quantizers, more than the server's --max-quantizers-per-model ",
                   limits.max_quantizers, "; nothing was changed"));
}

}  // namespace qcal::server
