#include "server/core/partial_state.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/base/checked_add.h"
#include "server/base/status_util.h"

namespace qcal::server {
namespace {

std::string AxisText(const std::optional<int>& axis) {
  return axis.has_value() ? absl::StrCat("axis ", *axis) : "no axis (per tensor)";
}

absl::Status CheckCounters(const PartialState& partial, const std::string& where) {
  if (partial.batches < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": batches is ", partial.batches, "; a partial state counts >= 1"));
  }
  if (partial.elements < 0 || partial.nonfinite < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": elements ", partial.elements,
                                                   " and nonfinite ", partial.nonfinite,
                                                   " must be >= 0"));
  }
  if (partial.nonfinite > partial.elements) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": nonfinite ", partial.nonfinite,
                                                   " is more than elements ", partial.elements));
  }
  return absl::OkStatus();
}

absl::Status CheckHistogram(const QuantizerSpec& spec, const PartialState& partial,
                            const kernels::MergeableState& histogram, const std::string& where) {
  if (spec.calibrator != CalibratorKind::kHistogram) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, ": a histogram was sent, but the quantizer has a max calibrator (send `max`)"));
  }
  if (spec.layout != kernels::HistogramLayout::kMergeable) {
    return absl::FailedPreconditionError(absl::StrCat(
        where,
        ": the model uses the reference histogram layout, whose bins depend on the order the "
        "data arrived in, so histograms counted elsewhere cannot be added; create the model "
        "with HISTOGRAM_LAYOUT_MERGEABLE to send pre-aggregated histograms"));
  }
  QCAL_RETURN_IF_ERROR(Annotate(kernels::ValidateMergeableState(histogram, spec.num_bins),
                                absl::StrCat(where, ": histogram")));
  uint64_t total = histogram.zeros;
  for (const uint64_t count : histogram.counts) {
    absl::StatusOr<uint64_t> sum = CheckedAdd(total, count, "");
    if (!sum.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": histogram counts add up to more than 2^64 - 1, not to elements - nonfinite ",
          partial.elements - partial.nonfinite));
    }
    total = *sum;
  }
  const uint64_t finite = static_cast<uint64_t>(partial.elements - partial.nonfinite);
  if (spec.skip_zeros && histogram.zeros != 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": histogram zeros is ", histogram.zeros,
                                                   ", but the quantizer skips zeros (0 expected)"));
  }
  if (spec.skip_zeros ? total > finite : total != finite) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": histogram counts and zeros add up to ", total, ", but elements - nonfinite is ",
        finite, spec.skip_zeros ? " (with skip_zeros they may add up to at most that)" : ""));
  }
  return absl::OkStatus();
}

absl::Status CheckMax(const QuantizerSpec& spec, int64_t max_channels, int64_t channels,
                      const MaxPartial& max, const std::string& where) {
  if (spec.calibrator != CalibratorKind::kMax) {
    return absl::FailedPreconditionError(
        absl::StrCat(where,
                     ": maxima were sent, but the quantizer has a histogram calibrator (send "
                     "`histogram`)"));
  }
  const int64_t count = static_cast<int64_t>(max.amax.size());
  if (max.axis != spec.axis) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": max has ", AxisText(max.axis), ", but the quantizer has ", AxisText(spec.axis)));
  }
  if (!spec.axis.has_value() && count != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": max holds ", count, " amax values; a per-tensor quantizer takes exactly 1"));
  }
  if (count == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": max holds no amax values; one per channel expected"));
  }
  if (count > max_channels) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, ": max holds ", count, " channels on axis ", *spec.axis,
                     ", more than the server's --max-channels ", max_channels));
  }
  if (channels != 0 && count != channels) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": max holds ", count,
                                                   " channels on axis ", *spec.axis,
                                                   " but earlier batches had ", channels));
  }
  for (int64_t i = 0; i < count; ++i) {
    const float value = max.amax[static_cast<size_t>(i)];
    if (!std::isfinite(value) || value < 0.0f) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": max.amax[", i, "] is ", value,
                                                     "; amax values are finite and >= 0"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckPartialState(const QuantizerSpec& spec, int64_t max_channels, int64_t channels,
                               const PartialState& partial) {
  const std::string where = absl::StrCat("quantizer '", spec.name, "': partial state");
  // The kind first: a state of the other kind is the caller's configuration, not its numbers.
  if (const auto* histogram = std::get_if<kernels::MergeableState>(&partial.state)) {
    if (spec.calibrator == CalibratorKind::kHistogram &&
        spec.layout == kernels::HistogramLayout::kMergeable) {
      QCAL_RETURN_IF_ERROR(CheckCounters(partial, where));
    }
    return CheckHistogram(spec, partial, *histogram, where);
  }
  const MaxPartial& max = std::get<MaxPartial>(partial.state);
  if (spec.calibrator == CalibratorKind::kMax) QCAL_RETURN_IF_ERROR(CheckCounters(partial, where));
  return CheckMax(spec, max_channels, channels, max, where);
}

}  // namespace qcal::server
