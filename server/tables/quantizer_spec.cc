#include "server/tables/quantizer_spec.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace qcal::server {

absl::string_view CalibratorKindName(CalibratorKind kind) {
  return kind == CalibratorKind::kMax ? "max" : "histogram";
}

bool IsWeightQuantizer(absl::string_view name) { return absl::EndsWith(name, "_weight_quantizer"); }

QuantizerSpec DefaultInputSpec() { return QuantizerSpec{}; }

QuantizerSpec DefaultWeightSpec() {
  QuantizerSpec spec;
  spec.axis = 0;
  spec.calibrator = CalibratorKind::kMax;
  return spec;
}

absl::Status ValidateSpec(const QuantizerSpec& spec) {
  const std::string who =
      spec.name.empty() ? "default descriptor" : absl::StrCat("quantizer '", spec.name, "'");
  if (spec.format == kernels::QuantFormat::kFp8E4M3) {
    // E4M3 is one 8-bit signed format; SpecFromProto has already turned the wire's unset
    // num_bits (0) into 8.
    if (spec.num_bits != 8) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": num_bits ", spec.num_bits, " does not fit format fp8_e4m3 (8 bits, or unset)"));
    }
    if (spec.is_unsigned) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": format fp8_e4m3 is signed; unsigned must be false"));
    }
  }
  if (spec.num_bits < 2 || spec.num_bits > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": num_bits ", spec.num_bits, " is outside 2..16"));
  }
  if (spec.calibrator == CalibratorKind::kHistogram) {
    if (spec.axis.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": a histogram calibrator is per-tensor only, but axis ", *spec.axis,
                       " was given (use the max calibrator for per-channel amax)"));
    }
    if (spec.num_bins < 1 || spec.num_bins > kMaxHistogramBins) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": num_bins ", spec.num_bins, " is outside 1..", kMaxHistogramBins));
    }
  } else if (spec.skip_zeros) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": skip_zeros applies to histogram calibrators only"));
  }
  return absl::OkStatus();
}

}  // namespace qcal::server
