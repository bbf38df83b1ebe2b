// kernels::Histogram's reference-layout state as a value, for state files.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/histogram.h"

namespace qcal::kernels {
namespace {

absl::Status CheckReferenceState(const Histogram::ReferenceState& state, int64_t bin_limit) {
  const auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("reference histogram state: ", parts...));
  };
  const size_t bins = state.counts.size();
  if (state.edges.size() != (bins == 0 ? 0 : bins + 1)) {
    return invalid("edges has ", state.edges.size(), " values, should have ",
                   bins == 0 ? 0 : bins + 1, " for ", bins, " counts");
  }
  if (static_cast<int64_t>(bins) > bin_limit) {
    return invalid("counts has ", bins, " bins, beyond the bin limit ", bin_limit);
  }
  if (bins > 0 && state.edges[0] != 0.0f) {
    return invalid("edges[0] is ", state.edges[0], ", should be 0");
  }
  // Non-decreasing, not increasing: past about 2^23 bins (a raised --max-num-bins) neighbouring
  // float32 edges round to one value, and a state the histogram itself built must load again.
  for (size_t i = 1; i < state.edges.size(); ++i) {
    if (!(state.edges[i] >= state.edges[i - 1]) || !std::isfinite(state.edges[i])) {
      return invalid("edges[", i, "] = ", state.edges[i], " is not finite, or below edges[",
                     i - 1, "] = ", state.edges[i - 1]);
    }
  }
  if (!std::isfinite(state.abs_max) || state.abs_max < 0.0f) {
    return invalid("abs_max ", state.abs_max, " must be finite and >= 0");
  }
  // linspace may round the first batch's last edge a little below its max: one bin of slack.
  if (bins == 0 ? state.abs_max != 0.0f
                : static_cast<double>(state.abs_max) >
                      2.0 * state.edges[bins] - static_cast<double>(state.edges[bins - 1])) {
    return invalid("abs_max ", state.abs_max, " lies beyond the last edge ",
                   bins == 0 ? 0.0f : state.edges.back(),
                   bins == 0 ? " (no bins)" : " by over a bin");
  }
  if (bins > 0 && state.pending_zeros != 0) {
    return invalid("pending_zeros ", state.pending_zeros,
                   " should be 0 beside bins (zeros are counted in bin 0)");
  }
  uint64_t sum = state.pending_zeros;
  for (const uint64_t c : state.counts) {
    if (__builtin_add_overflow(sum, c, &sum)) return invalid("counts sum past 2^64 - 1");
  }
  if (sum != state.total) {
    return invalid("total ", state.total, " is not the sum of counts and pending_zeros, ", sum);
  }
  if (state.total > 0 && !state.collected) {
    return invalid("collected is false with ", state.total, " values counted");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Histogram::ReferenceState> Histogram::ExportReference() const {
  if (options_.layout != HistogramLayout::kReference) {
    return absl::FailedPreconditionError(
        "ExportReference: the histogram is in the mergeable layout, not the reference one");
  }
  return ReferenceState{.counts = counts_,
                        .edges = edges_,
                        .abs_max = abs_max_,
                        .total = total_,
                        .pending_zeros = pending_zeros_,
                        .collected = collected_};
}

absl::Status Histogram::RestoreReference(const ReferenceState& state) {
  if (!options_status_.ok()) return options_status_;
  if (options_.layout != HistogramLayout::kReference) {
    return absl::FailedPreconditionError(
        "RestoreReference: the histogram is in the mergeable layout, not the reference one");
  }
  if (absl::Status status = CheckReferenceState(state, options_.bin_limit()); !status.ok()) {
    return status;
  }
  counts_ = state.counts;
  edges_ = state.edges;
  abs_max_ = state.abs_max;
  total_ = state.total;
  pending_zeros_ = state.pending_zeros;
  collected_ = state.collected;
  exponent_ = 0;
  return absl::OkStatus();
}

}  // namespace qcal::kernels
