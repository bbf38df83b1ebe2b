#include "server/quantizer_state.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/tensor_shape.h"
#include "server/cpu_calibrator.h"
#include "server/status_util.h"

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
    QuantizerSpec spec, bool declared, const CalibratorBackend& backend) {
  QCAL_RETURN_IF_ERROR(ValidateSpec(spec));
  absl::StatusOr<std::unique_ptr<Calibrator>> calibrator = backend.Create(spec);
  if (!calibrator.ok()) {
    return Annotate(calibrator.status(), absl::StrCat("quantizer '", spec.name, "'"));
  }
  return std::unique_ptr<QuantizerState>(
      new QuantizerState(std::move(spec), declared, *std::move(calibrator)));
}

QuantizerState::QuantizerState(QuantizerSpec spec, bool declared,
                               std::unique_ptr<Calibrator> calibrator)
    : spec_(std::move(spec)), declared_(declared), calibrator_(std::move(calibrator)) {}

absl::Status QuantizerState::CheckShape(std::span<const int64_t> shape) const {
  absl::ReaderMutexLock lock(&mu_);
  return CheckShapeLocked(shape);
}

absl::Status QuantizerState::CheckShapeLocked(std::span<const int64_t> shape) const {
  if (!spec_.axis.has_value()) return absl::OkStatus();
  const int rank = static_cast<int>(shape.size());
  const int axis = *spec_.axis < 0 ? *spec_.axis + rank : *spec_.axis;
  if (axis < 0 || axis >= rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantizer '", spec_.name, "': axis ", *spec_.axis, " is out of range for a batch of rank ",
        rank, " (shape ", kernels::ShapeString(shape), ")"));
  }
  const int64_t channels = calibrator_->amax_size();
  if (spec_.calibrator == CalibratorKind::kMax && channels != 0 && channels != shape[axis]) {
    return absl::InvalidArgumentError(absl::StrCat("quantizer '", spec_.name, "': the batch has ",
                                                   shape[axis], " channels on axis ", *spec_.axis,
                                                   " but earlier batches had ", channels));
  }
  return absl::OkStatus();
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

absl::StatusOr<QuantizerAmax> QuantizerState::ComputeAmax(const MethodParams& params) const {
  absl::ReaderMutexLock lock(&mu_);
  if (stats_.batches == 0) {
    return absl::FailedPreconditionError(absl::StrCat("quantizer '", spec_.name, "' has no data"));
  }
  QuantizerAmax out{.name = spec_.name,
                    .amax = {},
                    .axis = spec_.axis,
                    .num_bits = spec_.num_bits,
                    .is_unsigned = spec_.is_unsigned,
                    .method = "max",
                    .batches = stats_.batches,
                    .elements = stats_.elements,
                    .nonfinite = stats_.nonfinite};
  QCAL_ASSIGN_OR_RETURN(out.amax,
                        calibrator_->Amax(params, spec_.num_bits, spec_.is_unsigned, spec_.name));
  if (spec_.calibrator == CalibratorKind::kHistogram) out.method = params.method;
  return out;
}

void QuantizerState::Reset() {
  absl::MutexLock lock(&mu_);
  calibrator_->Reset();
  stats_ = BatchStats{};
}

}  // namespace qcal::server
