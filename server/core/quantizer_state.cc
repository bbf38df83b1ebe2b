#include "server/core/quantizer_state.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "kernels/tensor_shape.h"
#include "server/base/checked_add.h"
#include "server/base/status_util.h"
#include "server/device/cpu_calibrator.h"

namespace qcal::server {

absl::StatusOr<BatchStats> AddBatchStats(const BatchStats& have, const BatchStats& more,
                                         absl::string_view where) {
  BatchStats sum;
  QCAL_ASSIGN_OR_RETURN(sum.batches,
                        CheckedAdd(have.batches, more.batches, absl::StrCat(where, "batches")));
  QCAL_ASSIGN_OR_RETURN(sum.elements,
                        CheckedAdd(have.elements, more.elements, absl::StrCat(where, "elements")));
  QCAL_ASSIGN_OR_RETURN(
      sum.nonfinite, CheckedAdd(have.nonfinite, more.nonfinite, absl::StrCat(where, "nonfinite")));
  QCAL_ASSIGN_OR_RETURN(sum.bytes,
                        CheckedAdd(have.bytes, more.bytes, absl::StrCat(where, "bytes")));
  QCAL_ASSIGN_OR_RETURN(sum.partials,
                        CheckedAdd(have.partials, more.partials, absl::StrCat(where, "partials")));
  return sum;
}

BatchStats& BatchStats::operator+=(const BatchStats& other) {
  batches += other.batches;
  elements += other.elements;
  nonfinite += other.nonfinite;
  bytes += other.bytes;
  partials += other.partials;
  return *this;
}

namespace {

// The counts of a histogram state (with zeros or pending zeros); nullopt past 2^64 - 1.
template <typename Counts>
std::optional<uint64_t> SumCounts(const Counts& counts, uint64_t start) {
  uint64_t total = start;
  for (const uint64_t count : counts) {
    if (total > std::numeric_limits<uint64_t>::max() - count) return std::nullopt;
    total += count;
  }
  return total;
}

// Checks a snapshot's counters and state against its spec (Restore's INVALID_ARGUMENT and
// RESOURCE_EXHAUSTED cases; the histograms' own consistency is the calibrator's to check).
absl::Status CheckSnapshot(const QuantizerSnapshot& snapshot, const ModelLimits& limits) {
  const QuantizerSpec& spec = snapshot.spec;
  const std::string where = absl::StrCat("quantizer '", spec.name, "'");
  if (snapshot.batches < 0 || snapshot.elements < 0 || snapshot.nonfinite < 0 ||
      snapshot.bytes < 0 || snapshot.nonfinite > snapshot.elements) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": inconsistent counters (batches ", snapshot.batches, ", elements ",
                     snapshot.elements, ", nonfinite ", snapshot.nonfinite, ", bytes ",
                     snapshot.bytes, "); each must be >= 0 and nonfinite at most elements"));
  }
  const bool has_state = !std::holds_alternative<std::monostate>(snapshot.state);
  if (has_state != (snapshot.batches > 0) &&
      !(snapshot.batches > 0 && spec.calibrator == CalibratorKind::kHistogram)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, has_state
                   ? ": a calibrator state without batches"
                   : ": batches " + std::to_string(snapshot.batches) + " but no calibrator state"));
  }
  const uint64_t finite = static_cast<uint64_t>(snapshot.elements - snapshot.nonfinite);
  std::optional<uint64_t> total;
  if (const auto* max = std::get_if<MaxValues>(&snapshot.state)) {
    if (spec.calibrator != CalibratorKind::kMax) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": a max state for a histogram calibrator"));
    }
    const PartialState as_partial{.batches = std::max<int64_t>(snapshot.batches, 1),
                                  .elements = snapshot.elements,
                                  .nonfinite = snapshot.nonfinite,
                                  .state = MaxPartial{.amax = max->amax, .axis = spec.axis}};
    return CheckPartialState(spec, limits.max_channels, /*channels=*/0, as_partial, "state");
  }
  if (const auto* mergeable = std::get_if<kernels::MergeableState>(&snapshot.state)) {
    if (spec.calibrator != CalibratorKind::kHistogram ||
        spec.layout != kernels::HistogramLayout::kMergeable) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": a mergeable-layout histogram state for a ",
          spec.calibrator == CalibratorKind::kMax ? "max calibrator" : "reference-layout model"));
    }
    QCAL_RETURN_IF_ERROR(
        Annotate(kernels::ValidateMergeableState(*mergeable, spec.num_bins), where));
    total = SumCounts(mergeable->counts, mergeable->zeros);
  } else if (const auto* reference =
                 std::get_if<kernels::Histogram::ReferenceState>(&snapshot.state)) {
    if (spec.calibrator != CalibratorKind::kHistogram ||
        spec.layout != kernels::HistogramLayout::kReference) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": a reference-layout histogram state for a ",
          spec.calibrator == CalibratorKind::kMax ? "max calibrator" : "mergeable-layout model"));
    }
    total = SumCounts(reference->counts, reference->pending_zeros);
  } else {
    return absl::OkStatus();
  }
  if (!total.has_value() || (spec.skip_zeros ? *total > finite : *total != finite)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": the histogram holds ", total.has_value() ? std::to_string(*total) : "> 2^64",
        " values, but elements - nonfinite is ", finite));
  }
  return absl::OkStatus();
}

// The channels a max calibrator keeps after a batch of `shape` (checked by CheckBatchShape).
int64_t ChannelsOf(const QuantizerSpec& spec, std::span<const int64_t> shape) {
  if (!spec.axis.has_value()) return 1;
  const int rank = static_cast<int>(shape.size());
  return shape[static_cast<size_t>(*spec.axis < 0 ? *spec.axis + rank : *spec.axis)];
}

}  // namespace

int64_t QuantizerStateBytes(const QuantizerSpec& spec, int64_t bins, int64_t amax_size) {
  return kQuantizerBytes + 2 * static_cast<int64_t>(spec.name.size()) +
         (bins > 0 ? kBytesPerBin * (bins + 1) : 0) + 4 * amax_size;
}

int64_t MaxHistogramBins(const QuantizerSpec& spec) {
  if (spec.calibrator != CalibratorKind::kHistogram) return 0;
  if (spec.layout == kernels::HistogramLayout::kMergeable) return 2 * int64_t{spec.num_bins};
  return std::max<int64_t>(kernels::Histogram::kDefaultMaxBins, spec.num_bins);
}

absl::StatusOr<std::unique_ptr<QuantizerState>> QuantizerState::Create(QuantizerSpec spec,
                                                                       bool declared) {
  return Create(std::move(spec), declared, *CpuBackend());
}

absl::StatusOr<std::unique_ptr<QuantizerState>> QuantizerState::Create(
    QuantizerSpec spec, bool declared, const CalibratorBackend& backend,
    const ModelLimits& limits) {
  QCAL_RETURN_IF_ERROR(ValidateSpec(spec));
  QCAL_RETURN_IF_ERROR(CheckSpecLimits(spec, limits));
  StateBudget::Charge charge(limits.state_budget);
  QCAL_RETURN_IF_ERROR(
      charge.Resize(QuantizerStateBytes(spec, 0, 0), absl::StrCat("quantizer '", spec.name, "'")));
  absl::StatusOr<std::unique_ptr<Calibrator>> calibrator = backend.Create(spec);
  if (!calibrator.ok()) {
    return Annotate(calibrator.status(), absl::StrCat("quantizer '", spec.name, "'"));
  }
  return std::unique_ptr<QuantizerState>(new QuantizerState(
      std::move(spec), declared, *std::move(calibrator), limits.max_channels, std::move(charge)));
}

QuantizerState::QuantizerState(QuantizerSpec spec, bool declared,
                               std::unique_ptr<Calibrator> calibrator, int64_t max_channels,
                               StateBudget::Charge charge)
    : spec_(std::move(spec)),
      declared_(declared),
      max_channels_(max_channels),
      calibrator_(std::move(calibrator)),
      charge_(std::move(charge)) {}

absl::Status QuantizerState::ReserveLocked(int64_t bytes) {
  return charge_.Resize(bytes, absl::StrCat("quantizer '", spec_.name, "'"));
}

void QuantizerState::SettleLocked() {
  charge_.Settle(QuantizerStateBytes(spec_, calibrator_->bins(), calibrator_->amax_size()));
}

int64_t QuantizerState::charged_bytes() const {
  absl::ReaderMutexLock lock(&mu_);
  return charge_.bytes();
}

absl::Status QuantizerState::CheckShape(std::span<const int64_t> shape) const {
  absl::ReaderMutexLock lock(&mu_);
  return CheckShapeLocked(shape);
}

absl::Status CheckBatchShape(const QuantizerSpec& spec, int64_t max_channels, int64_t channels,
                             std::span<const int64_t> shape) {
  if (!spec.axis.has_value()) return absl::OkStatus();
  const int rank = static_cast<int>(shape.size());
  const int axis = *spec.axis < 0 ? *spec.axis + rank : *spec.axis;
  if (axis < 0 || axis >= rank) {
    return absl::InvalidArgumentError(absl::StrCat("quantizer '", spec.name, "': axis ", *spec.axis,
                                                   " is out of range for a batch of rank ", rank,
                                                   " (shape ", kernels::ShapeString(shape), ")"));
  }
  // A 1-D batch of 2^27 values on axis 0 would otherwise make a table of 2^27 amax values, whose
  // response protobuf cannot even serialize.
  if (spec.calibrator == CalibratorKind::kMax && shape[axis] > max_channels) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "quantizer '", spec.name, "': the batch has ", shape[axis], " channels on axis ",
        *spec.axis, ", more than the server's --max-channels ", max_channels,
        " (a per-channel max calibrator keeps one amax per channel; is the axis right?)"));
  }
  if (spec.calibrator == CalibratorKind::kMax && channels != 0 && channels != shape[axis]) {
    return absl::InvalidArgumentError(absl::StrCat("quantizer '", spec.name, "': the batch has ",
                                                   shape[axis], " channels on axis ", *spec.axis,
                                                   " but earlier batches had ", channels));
  }
  return absl::OkStatus();
}

absl::Status QuantizerState::CheckShapeLocked(std::span<const int64_t> shape) const {
  return CheckBatchShape(spec_, max_channels_, calibrator_->amax_size(), shape);
}

absl::StatusOr<BatchStats> QuantizerState::Apply(std::span<const float> values,
                                                 std::span<const int64_t> shape, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  QCAL_RETURN_IF_ERROR(CheckShapeLocked(shape));
  QCAL_RETURN_IF_ERROR(ReserveLocked(QuantizerStateBytes(
      spec_, MaxHistogramBins(spec_),
      spec_.calibrator == CalibratorKind::kMax ? ChannelsOf(spec_, shape) : 0)));
  absl::StatusOr<kernels::CollectStats> collected = calibrator_->Collect(values, shape);
  SettleLocked();
  if (!collected.ok()) {
    return Annotate(collected.status(), absl::StrCat("quantizer '", spec_.name, "'"));
  }
  const BatchStats applied{.batches = 1,
                           .elements = collected->elements,
                           .nonfinite = collected->nonfinite,
                           .bytes = bytes};
  stats_ += applied;
  return applied;
}

absl::StatusOr<BatchStats> QuantizerState::ApplyPartial(const PartialState& partial,
                                                        int64_t bytes) {
  absl::MutexLock lock(&mu_);
  QCAL_RETURN_IF_ERROR(CheckPartialState(spec_, max_channels_, calibrator_->amax_size(), partial));
  BatchStats applied{.batches = partial.batches,
                     .elements = partial.elements,
                     .nonfinite = partial.nonfinite,
                     .bytes = bytes};
  QCAL_ASSIGN_OR_RETURN(const BatchStats sum, AddBatchStats(stats_, applied,
                                                            absl::StrCat("quantizer '", spec_.name,
                                                                         "': partial state: ")));
  const auto* max = std::get_if<MaxPartial>(&partial.state);
  QCAL_RETURN_IF_ERROR(ReserveLocked(
      QuantizerStateBytes(spec_, MaxHistogramBins(spec_),
                          max != nullptr ? static_cast<int64_t>(max->amax.size()) : 0)));
  const absl::Status merged =
      max != nullptr
          ? calibrator_->MergeMax(max->amax)
          : calibrator_->MergeMergeable(std::get<kernels::MergeableState>(partial.state));
  SettleLocked();
  if (!merged.ok()) {
    return Annotate(merged, absl::StrCat("quantizer '", spec_.name, "': partial state"));
  }
  stats_ = sum;
  applied.partials = 1;
  return applied;
}

absl::StatusOr<QuantizerSnapshot> QuantizerState::Export() const {
  absl::ReaderMutexLock lock(&mu_);
  QuantizerSnapshot out{.spec = spec_,
                        .declared = declared_,
                        .batches = stats_.batches,
                        .elements = stats_.elements,
                        .nonfinite = stats_.nonfinite,
                        .bytes = stats_.bytes};
  absl::StatusOr<CalibratorState> state = calibrator_->Export();
  if (!state.ok()) return Annotate(state.status(), absl::StrCat("quantizer '", spec_.name, "'"));
  out.state = *std::move(state);
  return out;
}

absl::StatusOr<std::unique_ptr<QuantizerState>> QuantizerState::Restore(
    const QuantizerSnapshot& snapshot, const CalibratorBackend& backend,
    const ModelLimits& limits) {
  QCAL_ASSIGN_OR_RETURN(std::unique_ptr<QuantizerState> state,
                        Create(snapshot.spec, snapshot.declared, backend, limits));
  QCAL_RETURN_IF_ERROR(CheckSnapshot(snapshot, limits));
  const std::string where = absl::StrCat("quantizer '", snapshot.spec.name, "'");
  absl::MutexLock lock(&state->mu_);
  int64_t bins = 0, amax_size = 0;
  if (const auto* max = std::get_if<MaxValues>(&snapshot.state)) {
    amax_size = static_cast<int64_t>(max->amax.size());
  } else if (const auto* reference =
                 std::get_if<kernels::Histogram::ReferenceState>(&snapshot.state)) {
    bins = static_cast<int64_t>(reference->counts.size());
  } else if (std::holds_alternative<kernels::MergeableState>(snapshot.state)) {
    bins = MaxHistogramBins(snapshot.spec);
  }
  QCAL_RETURN_IF_ERROR(state->ReserveLocked(QuantizerStateBytes(snapshot.spec, bins, amax_size)));
  absl::Status restored = absl::OkStatus();
  if (const auto* max = std::get_if<MaxValues>(&snapshot.state)) {
    restored = state->calibrator_->MergeMax(max->amax);
  } else if (const auto* mergeable = std::get_if<kernels::MergeableState>(&snapshot.state)) {
    restored = state->calibrator_->MergeMergeable(*mergeable);
  } else if (const auto* reference =
                 std::get_if<kernels::Histogram::ReferenceState>(&snapshot.state)) {
    restored = state->calibrator_->RestoreReference(*reference);
  }
  state->SettleLocked();
  // A state the calibrator refuses is a file that contradicts itself.
  if (!restored.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", restored.message()));
  }
  state->stats_ = {.batches = snapshot.batches,
                   .elements = snapshot.elements,
                   .nonfinite = snapshot.nonfinite,
                   .bytes = snapshot.bytes};
  return state;
}

BatchStats QuantizerState::stats() const {
  absl::ReaderMutexLock lock(&mu_);
  return stats_;
}

QuantizerState::Sizes QuantizerState::sizes() const {
  absl::ReaderMutexLock lock(&mu_);
  return {.bins = calibrator_->bins(), .amax_size = calibrator_->amax_size()};
}

absl::StatusOr<HistogramSnapshot> QuantizerState::Histogram() const {
  if (spec_.calibrator != CalibratorKind::kHistogram) {
    return absl::FailedPreconditionError(absl::StrCat(
        "quantizer '", spec_.name, "' has a max calibrator, which keeps no ", "histogram"));
  }
  absl::ReaderMutexLock lock(&mu_);
  absl::StatusOr<HistogramSnapshot> out = calibrator_->Histogram();
  if (!out.ok()) return Annotate(out.status(), absl::StrCat("quantizer '", spec_.name, "'"));
  out->nonfinite = stats_.nonfinite;
  return out;
}

absl::StatusOr<QuantizerAmax> QuantizerState::ComputeAmax(
    const MethodParams& params, const std::function<bool()>* cancelled) const {
  QuantizerAmax out{
      .name = spec_.name,
      .amax = {},
      .axis = spec_.axis,
      .num_bits = spec_.num_bits,
      .is_unsigned = spec_.is_unsigned,
      .method = spec_.calibrator == CalibratorKind::kHistogram ? params.method : "max",
      .batches = 0,
      .elements = 0,
      .nonfinite = 0,
      .format = spec_.format};
  std::unique_ptr<Calibrator> snapshot;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (stats_.batches == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("quantizer '", spec_.name, "' has no data"));
    }
    out.batches = stats_.batches;
    out.elements = stats_.elements;
    out.nonfinite = stats_.nonfinite;
    snapshot = calibrator_->Snapshot();
    if (snapshot == nullptr) {  // no snapshot (a GPU's state): search under the lock
      QCAL_ASSIGN_OR_RETURN(out.amax, calibrator_->Amax(params, spec_.num_bits, spec_.is_unsigned,
                                                        spec_.format, spec_.name, cancelled));
      return out;
    }
  }
  QCAL_ASSIGN_OR_RETURN(out.amax, snapshot->Amax(params, spec_.num_bits, spec_.is_unsigned,
                                                 spec_.format, spec_.name, cancelled));
  return out;
}

void QuantizerState::Reset() {
  absl::MutexLock lock(&mu_);
  calibrator_->Reset();
  stats_ = BatchStats{};
  SettleLocked();
}

}  // namespace qcal::server
