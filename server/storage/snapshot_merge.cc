#include "server/storage/snapshot_merge.h"

#include <algorithm>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "server/base/checked_add.h"
#include "server/base/status_util.h"

namespace qcal::server {
namespace {

using ReferenceState = kernels::Histogram::ReferenceState;

absl::StatusOr<MaxValues> MergeMax(const MaxValues& have, const MaxValues& other,
                                   const std::string& where) {
  if (have.amax.size() != other.amax.size()) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": the model holds ", have.amax.size(),
                                                      " amax values (channels), the state file ",
                                                      other.amax.size()));
  }
  MaxValues out = have;
  for (size_t i = 0; i < out.amax.size(); ++i) out.amax[i] = std::max(out.amax[i], other.amax[i]);
  return out;
}

}  // namespace

absl::StatusOr<ReferenceState> MergeReferenceStates(const ReferenceState& have,
                                                    const ReferenceState& other,
                                                    absl::string_view quantizer) {
  const std::string where = absl::StrCat("quantizer '", quantizer, "'");
  if (have.counts.empty() && other.counts.empty()) {
    ReferenceState out = have;
    QCAL_ASSIGN_OR_RETURN(out.total, CheckedAdd(have.total, other.total, where + ": total"));
    QCAL_ASSIGN_OR_RETURN(out.pending_zeros, CheckedAdd(have.pending_zeros, other.pending_zeros,
                                                        where + ": pending zeros"));
    out.abs_max = std::max(have.abs_max, other.abs_max);
    out.collected = have.collected || other.collected;
    return out;
  }
  if (have.counts.empty() || other.counts.empty()) {
    // Zeros held before any range go to bin 0 once one exists (kernels::Histogram does the same
    // when its first non-zero batch arrives).
    const ReferenceState& binned = have.counts.empty() ? other : have;
    const ReferenceState& zeros = have.counts.empty() ? have : other;
    ReferenceState out = binned;
    QCAL_ASSIGN_OR_RETURN(out.counts[0],
                          CheckedAdd(out.counts[0], zeros.pending_zeros, where + ": bin 0"));
    QCAL_ASSIGN_OR_RETURN(out.total, CheckedAdd(out.total, zeros.total, where + ": total"));
    out.collected = true;
    return out;
  }
  if (have.edges != other.edges) {
    return absl::FailedPreconditionError(absl::StrCat(
        where,
        ": reference-layout histograms merge only with identical edges, but the model's has ",
        have.counts.size(), " bins up to ", have.edges.back(), " and the state file's ",
        other.counts.size(), " bins up to ", other.edges.back(),
        " (the reference layout's bins depend on the first batch; use "
        "HISTOGRAM_LAYOUT_MERGEABLE for states that merge)"));
  }
  ReferenceState out = have;
  for (size_t i = 0; i < out.counts.size(); ++i) {
    QCAL_ASSIGN_OR_RETURN(out.counts[i], CheckedAdd(have.counts[i], other.counts[i],
                                                    absl::StrCat(where, ": bin ", i)));
  }
  QCAL_ASSIGN_OR_RETURN(out.total, CheckedAdd(have.total, other.total, where + ": total"));
  out.abs_max = std::max(have.abs_max, other.abs_max);
  out.collected = true;
  return out;
}

absl::StatusOr<QuantizerSnapshot> MergeQuantizerSnapshots(const QuantizerSnapshot& have,
                                                          const QuantizerSnapshot& other) {
  const std::string where = absl::StrCat("quantizer '", have.spec.name, "'");
  QuantizerSnapshot out = have;
  QCAL_ASSIGN_OR_RETURN(out.batches, CheckedAdd(have.batches, other.batches, where + ": batches"));
  QCAL_ASSIGN_OR_RETURN(out.elements,
                        CheckedAdd(have.elements, other.elements, where + ": elements"));
  QCAL_ASSIGN_OR_RETURN(out.nonfinite,
                        CheckedAdd(have.nonfinite, other.nonfinite, where + ": nonfinite"));
  QCAL_ASSIGN_OR_RETURN(out.bytes, CheckedAdd(have.bytes, other.bytes, where + ": bytes"));

  if (std::holds_alternative<std::monostate>(other.state)) return out;
  if (std::holds_alternative<std::monostate>(have.state)) {
    out.state = other.state;
    return out;
  }
  if (have.state.index() != other.state.index()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": the model's state and the state file's are of different kinds"));
  }
  if (const auto* max = std::get_if<MaxValues>(&have.state)) {
    QCAL_ASSIGN_OR_RETURN(out.state, MergeMax(*max, std::get<MaxValues>(other.state), where));
  } else if (const auto* mergeable = std::get_if<kernels::MergeableState>(&have.state)) {
    kernels::MergeableState merged = *mergeable;
    QCAL_RETURN_IF_ERROR(
        Annotate(kernels::MergeMergeable(merged, std::get<kernels::MergeableState>(other.state),
                                         have.spec.num_bins),
                 where));
    out.state = std::move(merged);
  } else {
    QCAL_ASSIGN_OR_RETURN(
        out.state, MergeReferenceStates(std::get<ReferenceState>(have.state),
                                        std::get<ReferenceState>(other.state), have.spec.name));
  }
  return out;
}

}  // namespace qcal::server
