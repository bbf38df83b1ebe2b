#include "qcal/partial_state.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/status_macros.h"
#include "common/absl_string_view.h"
#include "kernels/dtype.h"
#include "kernels/histogram.h"
#include "kernels/max_calibrator.h"
#include "kernels/mergeable_histogram.h"

namespace qcal {
namespace {

kernels::DType ToKernels(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return kernels::DType::kFloat32;
    case DType::kFloat16:
      return kernels::DType::kFloat16;
    case DType::kBFloat16:
      return kernels::DType::kBFloat16;
    case DType::kFloat64:
      return kernels::DType::kFloat64;
  }
  return kernels::DType::kFloat32;
}

// A tensor's values as float32, decoded exactly as the server decodes a Record batch: a view of
// the caller's bytes when they already are aligned little-endian float32 (no copy), else a
// decoded copy held in `storage`.
struct Decoded {
  std::vector<float> storage;
  std::span<const float> values;
};

// Refuses what the server refuses before counting: a byte count that does not match, an empty
// tensor.
absl::StatusOr<Decoded> Decode(const TensorView& tensor) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(const uint64_t expected, TensorBytes(tensor.dtype, tensor.shape));
  if (tensor.data.size() != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(tensor.data.size(), " data bytes, but shape x dtype (",
                     internal::ToAbsl(DTypeName(tensor.dtype)), ") needs ", expected));
  }
  if (expected == 0) {
    return absl::InvalidArgumentError("an empty tensor (a dimension of 0) has nothing to count");
  }
  const size_t count = expected / DTypeSize(tensor.dtype);
  Decoded decoded;
  if (tensor.dtype == DType::kFloat32 && std::endian::native == std::endian::little &&
      reinterpret_cast<uintptr_t>(tensor.data.data()) % alignof(float) == 0) {
    decoded.values = {reinterpret_cast<const float*>(tensor.data.data()), count};
    return decoded;
  }
  decoded.storage.resize(count);
  kernels::DecodeToFloat32(ToKernels(tensor.dtype),
                           reinterpret_cast<const uint8_t*>(tensor.data.data()), count,
                           decoded.storage.data());
  decoded.values = decoded.storage;
  return decoded;
}

v1::MergeableHistogram ToProto(const kernels::MergeableState& state) {
  v1::MergeableHistogram proto;
  proto.set_exponent(state.exponent);
  proto.mutable_counts()->Assign(state.counts.begin(), state.counts.end());
  proto.set_abs_max(state.abs_max);
  proto.set_zeros(state.zeros);
  return proto;
}

kernels::MergeableState FromProto(const v1::MergeableHistogram& proto) {
  kernels::MergeableState state;
  state.exponent = proto.exponent();
  state.counts.assign(proto.counts().begin(), proto.counts().end());
  state.abs_max = proto.abs_max();
  state.zeros = proto.zeros();
  return state;
}

bool IsEmpty(const v1::PartialState& state) {
  return state.batches() == 0 && state.state_case() == v1::PartialState::STATE_NOT_SET;
}

std::string AxisText(const v1::MaxState& max) {
  return max.has_axis() ? absl::StrCat("axis ", max.axis()) : std::string("per-tensor");
}

// The merged max state, or why the two cannot merge.
absl::StatusOr<v1::MaxState> MergedMax(const v1::MaxState& a, const v1::MaxState& b) {
  if (a.has_axis() != b.has_axis() || (a.has_axis() && a.axis() != b.axis())) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot merge a ", AxisText(a), " max state with a ", AxisText(b), " one"));
  }
  if (a.amax_size() != b.amax_size()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot merge max states of ", a.amax_size(),
                                                   " and ", b.amax_size(), " amax values"));
  }
  v1::MaxState merged = a;
  for (int i = 0; i < b.amax_size(); ++i) {
    merged.set_amax(i, std::max(a.amax(i), b.amax(i)));
  }
  return merged;
}

}  // namespace

absl::StatusOr<PartialTarget> PartialTargetFor(const v1::ModelInfo& info,
                                               std::string_view quantizer) {
  const bool weight = absl::EndsWith(internal::ToAbsl(quantizer), "_weight_quantizer");
  const v1::QuantizerSpec* spec = weight ? &info.default_weight() : &info.default_input();
  for (const v1::QuantizerStats& stats : info.quantizers()) {
    if (stats.spec().name() == quantizer) {
      spec = &stats.spec();
      break;
    }
  }
  PartialTarget target;
  switch (spec->calibrator()) {
    case v1::CALIBRATOR_MAX:
      target.histogram = false;
      break;
    case v1::CALIBRATOR_HISTOGRAM:
      target.histogram = true;
      break;
    default:  // the role's default (calibration.proto QuantizerSpec)
      target.histogram = !weight;
  }
  if (target.histogram) {
    if (info.histogram_layout() != v1::HISTOGRAM_LAYOUT_MERGEABLE) {
      return absl::FailedPreconditionError(absl::StrCat(
          "pre-aggregation needs the mergeable histogram layout; model '", info.name(),
          "' has the ", v1::HistogramLayout_Name(info.histogram_layout()),
          " layout (create it with the mergeable layout, or record without aggregation)"));
    }
    target.num_bins = spec->num_bins() == 0 ? 2048 : spec->num_bins();
    target.skip_zeros = spec->skip_zeros();
  } else if (spec->has_axis()) {
    target.axis = spec->axis();
  }
  return target;
}

absl::StatusOr<v1::PartialState> CountHistogramPartial(const TensorView& tensor, int64_t num_bins,
                                                       bool skip_zeros) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(const Decoded decoded, Decode(tensor));
  return CountHistogramPartial(decoded.values, num_bins, skip_zeros);
}

absl::StatusOr<v1::PartialState> CountHistogramPartial(std::span<const float> values,
                                                       int64_t num_bins, bool skip_zeros) {
  if (values.empty()) {
    return absl::InvalidArgumentError("an empty tensor (a dimension of 0) has nothing to count");
  }
  QCAL_CLIENT_ASSIGN_OR_RETURN(
      kernels::MergeableBatch batch,
      kernels::CountMergeable(values, {.num_bins = num_bins, .skip_zeros = skip_zeros}));
  v1::PartialState partial;
  partial.set_batches(1);
  partial.set_elements(batch.stats.elements);
  partial.set_nonfinite(batch.stats.nonfinite);
  *partial.mutable_histogram() = ToProto(batch.state);
  return partial;
}

absl::StatusOr<v1::PartialState> CountMaxPartial(const TensorView& tensor,
                                                 std::optional<int32_t> axis) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(const Decoded decoded, Decode(tensor));
  return CountMaxPartial(decoded.values, tensor.shape, axis);
}

absl::StatusOr<v1::PartialState> CountMaxPartial(std::span<const float> values,
                                                 std::span<const int64_t> shape,
                                                 std::optional<int32_t> axis) {
  if (values.empty()) {
    return absl::InvalidArgumentError("an empty tensor (a dimension of 0) has nothing to count");
  }
  kernels::MaxCalibrator calibrator(axis.has_value() ? std::optional<int>(*axis) : std::nullopt);
  QCAL_CLIENT_ASSIGN_OR_RETURN(const kernels::CollectStats stats,
                               calibrator.Collect(values, shape));
  v1::PartialState partial;
  partial.set_batches(1);
  partial.set_elements(stats.elements);
  partial.set_nonfinite(stats.nonfinite);
  v1::MaxState* max = partial.mutable_max();
  max->mutable_amax()->Assign(calibrator.amax().begin(), calibrator.amax().end());
  if (axis.has_value()) max->set_axis(*axis);
  return partial;
}

absl::Status MergePartial(v1::PartialState& state, const v1::PartialState& other,
                          int64_t num_bins) {
  if (IsEmpty(state)) {
    if (other.has_histogram()) {
      QCAL_CLIENT_RETURN_IF_ERROR(
          kernels::ValidateMergeableState(FromProto(other.histogram()), num_bins));
    }
    state = other;
    return absl::OkStatus();
  }
  if (IsEmpty(other)) return absl::OkStatus();
  int64_t batches = 0;
  int64_t elements = 0;
  int64_t nonfinite = 0;
  if (__builtin_add_overflow(state.batches(), other.batches(), &batches) ||
      __builtin_add_overflow(state.elements(), other.elements(), &elements) ||
      __builtin_add_overflow(state.nonfinite(), other.nonfinite(), &nonfinite)) {
    return absl::OutOfRangeError("merged batch, element or non-finite counts pass 2^63 - 1");
  }
  v1::PartialState merged;
  merged.set_batches(batches);
  merged.set_elements(elements);
  merged.set_nonfinite(nonfinite);
  if (state.has_histogram() && other.has_histogram()) {
    kernels::MergeableState histogram = FromProto(state.histogram());
    const kernels::MergeableState more = FromProto(other.histogram());
    QCAL_CLIENT_RETURN_IF_ERROR(kernels::ValidateMergeableState(histogram, num_bins));
    QCAL_CLIENT_RETURN_IF_ERROR(kernels::ValidateMergeableState(more, num_bins));
    QCAL_CLIENT_RETURN_IF_ERROR(kernels::MergeMergeable(histogram, more, num_bins));
    *merged.mutable_histogram() = ToProto(histogram);
  } else if (state.has_max() && other.has_max()) {
    QCAL_CLIENT_ASSIGN_OR_RETURN(*merged.mutable_max(), MergedMax(state.max(), other.max()));
  } else {
    return absl::InvalidArgumentError(
        "cannot merge a histogram partial state with a max one (or one without a state)");
  }
  state = std::move(merged);
  return absl::OkStatus();
}

HistogramPartialCounter::HistogramPartialCounter(std::unique_ptr<kernels::Histogram> histogram)
    : histogram_(std::move(histogram)) {}
HistogramPartialCounter::~HistogramPartialCounter() = default;
HistogramPartialCounter::HistogramPartialCounter(HistogramPartialCounter&&) noexcept = default;
HistogramPartialCounter& HistogramPartialCounter::operator=(HistogramPartialCounter&&) noexcept =
    default;

absl::StatusOr<HistogramPartialCounter> HistogramPartialCounter::Create(int64_t num_bins,
                                                                        bool skip_zeros) {
  if (num_bins < 1 || num_bins > kernels::Histogram::kMaxBinsLimit) {
    return absl::InvalidArgumentError(absl::StrCat("num_bins ", num_bins, " is outside 1 .. ",
                                                   kernels::Histogram::kMaxBinsLimit));
  }
  return HistogramPartialCounter(std::make_unique<kernels::Histogram>(
      kernels::Histogram::Options{.num_bins = static_cast<int>(num_bins),
                                  .skip_zeros = skip_zeros,
                                  .layout = kernels::HistogramLayout::kMergeable}));
}

absl::Status HistogramPartialCounter::Add(const TensorView& tensor) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(const Decoded decoded, Decode(tensor));
  return Add(decoded.values);
}

absl::Status HistogramPartialCounter::Add(std::span<const float> values) {
  if (values.empty()) {
    return absl::InvalidArgumentError("an empty tensor (a dimension of 0) has nothing to count");
  }
  int64_t batches = 0;
  int64_t elements = 0;
  if (__builtin_add_overflow(batches_, int64_t{1}, &batches) ||
      __builtin_add_overflow(elements_, static_cast<int64_t>(values.size()), &elements)) {
    return absl::OutOfRangeError("batch or element counts pass 2^63 - 1");
  }
  QCAL_CLIENT_ASSIGN_OR_RETURN(const kernels::CollectStats stats, histogram_->Collect(values));
  batches_ = batches;
  elements_ = elements;
  nonfinite_ += stats.nonfinite;  // <= elements_, so it cannot overflow first
  return absl::OkStatus();
}

absl::Status HistogramPartialCounter::Merge(const v1::PartialState& partial) {
  if (!partial.has_histogram()) {
    return absl::InvalidArgumentError("cannot merge a max partial state into a histogram");
  }
  int64_t batches = 0;
  int64_t elements = 0;
  int64_t nonfinite = 0;
  if (__builtin_add_overflow(batches_, partial.batches(), &batches) ||
      __builtin_add_overflow(elements_, partial.elements(), &elements) ||
      __builtin_add_overflow(nonfinite_, partial.nonfinite(), &nonfinite)) {
    return absl::OutOfRangeError("merged batch, element or non-finite counts pass 2^63 - 1");
  }
  QCAL_CLIENT_RETURN_IF_ERROR(histogram_->MergeMergeable(FromProto(partial.histogram())));
  batches_ = batches;
  elements_ = elements;
  nonfinite_ = nonfinite;
  return absl::OkStatus();
}

v1::PartialState HistogramPartialCounter::Take() {
  v1::PartialState partial;
  if (batches_ > 0) {
    partial.set_batches(batches_);
    partial.set_elements(elements_);
    partial.set_nonfinite(nonfinite_);
    // The mergeable layout always exports.
    *partial.mutable_histogram() = ToProto(*histogram_->ExportMergeable());
  }
  histogram_->Reset();
  batches_ = elements_ = nonfinite_ = 0;
  return partial;
}

}  // namespace qcal
