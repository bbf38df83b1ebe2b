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

}  // namespace qcal::server
