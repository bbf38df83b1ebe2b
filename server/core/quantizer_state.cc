#include "server/core/quantizer_state.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/tensor_shape.h"
#include "server/base/status_util.h"
#include "server/device/cpu_calibrator.h"

namespace qcal::server {

BatchStats& BatchStats::operator+=(const BatchStats& other) {
  batches += other.batches;
  elements += other.elements;
  nonfinite += other.nonfinite;
  bytes += other.bytes;
  return *this;
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
  absl::StatusOr<std::unique_ptr<Calibrator>> calibrator = backend.Create(spec);
  if (!calibrator.ok()) {
    return Annotate(calibrator.status(), absl::StrCat("quantizer '", spec.name, "'"));
  }
  return std::unique_ptr<QuantizerState>(
      new QuantizerState(std::move(spec), declared, *std::move(calibrator), limits.max_channels));
}

QuantizerState::QuantizerState(QuantizerSpec spec, bool declared,
                               std::unique_ptr<Calibrator> calibrator, int64_t max_channels)
    : spec_(std::move(spec)),
      declared_(declared),
      max_channels_(max_channels),
      calibrator_(std::move(calibrator)) {}

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
  absl::StatusOr<kernels::CollectStats> collected = calibrator_->Collect(values, shape);
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
      .nonfinite = 0};
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
                                                        spec_.name, cancelled));
      return out;
    }
  }
  QCAL_ASSIGN_OR_RETURN(
      out.amax, snapshot->Amax(params, spec_.num_bits, spec_.is_unsigned, spec_.name, cancelled));
  return out;
}

void QuantizerState::Reset() {
  absl::MutexLock lock(&mu_);
  calibrator_->Reset();
  stats_ = BatchStats{};
}

}  // namespace qcal::server
