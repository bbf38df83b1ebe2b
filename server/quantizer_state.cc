#include "server/quantizer_state.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
  QCAL_RETURN_IF_ERROR(ValidateSpec(spec));
  return std::unique_ptr<QuantizerState>(new QuantizerState(std::move(spec), declared));
}

QuantizerState::QuantizerState(QuantizerSpec spec, bool declared)
    : spec_(std::move(spec)), declared_(declared) {
  if (spec_.calibrator == CalibratorKind::kMax) {
    max_.emplace(spec_.axis);
  } else {
    kernels::Histogram::Options options;
    options.num_bins = spec_.num_bins;
    options.skip_zeros = spec_.skip_zeros;
    options.max_bins = kMaxHistogramBins;
    histogram_.emplace(options);
  }
}

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
        rank, " (shape [", absl::StrJoin(shape, ", "), "])"));
  }
  if (max_.has_value() && !max_->empty() &&
      static_cast<int64_t>(max_->amax().size()) != shape[axis]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantizer '", spec_.name, "': the batch has ", shape[axis], " channels on axis ",
        *spec_.axis, " but earlier batches had ", max_->amax().size()));
  }
  return absl::OkStatus();
}

absl::StatusOr<BatchStats> QuantizerState::Apply(std::span<const float> values,
                                                 std::span<const int64_t> shape, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  QCAL_RETURN_IF_ERROR(CheckShapeLocked(shape));
  absl::StatusOr<kernels::CollectStats> collected =
      max_.has_value() ? max_->Collect(values, shape) : histogram_->Collect(values);
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

absl::StatusOr<HistogramSnapshot> QuantizerState::Histogram() const {
  if (spec_.calibrator != CalibratorKind::kHistogram) {
    return absl::FailedPreconditionError(absl::StrCat(
        "quantizer '", spec_.name, "' has a max calibrator, which keeps no ", "histogram"));
  }
  absl::ReaderMutexLock lock(&mu_);
  HistogramSnapshot out;
  out.counts.assign(histogram_->Counts().begin(), histogram_->Counts().end());
  out.edges.assign(histogram_->Edges().begin(), histogram_->Edges().end());
  out.abs_max = histogram_->abs_max();
  out.total = histogram_->total();
  out.nonfinite = stats_.nonfinite;
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
  if (max_.has_value()) {
    out.amax = max_->amax();
    return out;
  }
  QCAL_ASSIGN_OR_RETURN(float amax, HistogramAmax(*histogram_, params, spec_.num_bits,
                                                  spec_.is_unsigned, spec_.name));
  out.amax = {amax};
  out.method = params.method;
  return out;
}

void QuantizerState::Reset() {
  absl::MutexLock lock(&mu_);
  if (max_.has_value()) max_->Reset();
  if (histogram_.has_value()) histogram_->Reset();
  stats_ = BatchStats{};
}

}  // namespace qcal::server
