// Client-side pre-aggregation: the state qcal-server would compute from tensors, computed on the
// trainer and sent as a qcal.v1.PartialState (calibration.proto, RecordRequest.partial) instead of
// the tensors: a few kilobytes of exact counts instead of the activations.
//
//   QCAL_ASSIGN_OR_RETURN(v1::PartialState a, qcal::CountHistogramPartial(view1, 2048, false));
//   QCAL_ASSIGN_OR_RETURN(v1::PartialState b, qcal::CountHistogramPartial(view2, 2048, false));
//   QCAL_RETURN_IF_ERROR(qcal::MergePartial(a, b, 2048));      // as if view1, view2 were sent
//   session->RecordPartial("conv1._input_quantizer", a);
//
// Exactness. A tensor is decoded to float32 as the server decodes it (kernels/dtype.h: float16 and
// bfloat16 widen exactly, float64 rounds to nearest, beyond float32's range +-inf), then counted
// by the server's own kernels: histograms in the mergeable layout (kernels/mergeable_histogram.h,
// canonical form), maxima as kernels::MaxCalibrator folds them (NaN and +-inf counted in
// `nonfinite` and left out; a channel whose values are all 0 or non-finite has amax 0). So the
// server's state after a partial equals, bit for bit, its state after the raw tensors, in any
// order and split. Only the mergeable layout can take histogram partials: a reference-layout
// model refuses them (FAILED_PRECONDITION).
#ifndef QCAL_CLIENT_PARTIAL_STATE_H_
#define QCAL_CLIENT_PARTIAL_STATE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "qcal/tensor.h"
#include "qcal/v1/calibration.pb.h"

namespace qcal::kernels {
class Histogram;
}  // namespace qcal::kernels

namespace qcal {

// How a quantizer's partial state is counted, from its spec (declared, or the model's default for
// its role: names ending "_weight_quantizer" are weights).
struct PartialTarget {
  // Histogram (mergeable layout) or max calibrator.
  bool histogram = true;
  // Histograms: the spec's num_bins (2048 for 0) and skip_zeros.
  int64_t num_bins = 2048;
  bool skip_zeros = false;
  // Max calibrators: the declared channel axis; nullopt per-tensor.
  std::optional<int32_t> axis;
};

// The target of `quantizer` in the model `info` (GetModel's answer) describes. FAILED_PRECONDITION
// "pre-aggregation needs the mergeable histogram layout; model 'm' has the
// HISTOGRAM_LAYOUT_REFERENCE layout ..." for a histogram quantizer of a model whose layout is not
// HISTOGRAM_LAYOUT_MERGEABLE (max quantizers aggregate in either layout).
absl::StatusOr<PartialTarget> PartialTargetFor(const v1::ModelInfo& info,
                                               std::string_view quantizer);

// One tensor (any dtype, prod(shape) elements, at least one) as a histogram partial state for a
// quantizer with `num_bins` (1 .. 2^24; the spec's num_bins, 2048 when the spec says 0) and
// `skip_zeros`: batches 1, elements prod(shape), nonfinite the NaN/inf count, `histogram` the
// canonical MergeableHistogram of the finite |x|. INVALID_ARGUMENT for a byte count that does not
// match shape x dtype, an empty tensor, or num_bins out of range.
absl::StatusOr<v1::PartialState> CountHistogramPartial(const TensorView& tensor, int64_t num_bins,
                                                       bool skip_zeros);
// The same for float32 values already in memory (`values.size()` elements, any shape).
absl::StatusOr<v1::PartialState> CountHistogramPartial(std::span<const float> values,
                                                       int64_t num_bins, bool skip_zeros);

// One tensor as a max partial state: one amax per tensor (`axis` nullopt) or one per index of
// dimension `axis` (negative counts from the end), MaxState.axis = `axis` as given (the quantizer's
// declared axis). INVALID_ARGUMENT for a byte count that does not match, an empty tensor, or an
// axis outside the rank.
absl::StatusOr<v1::PartialState> CountMaxPartial(const TensorView& tensor,
                                                 std::optional<int32_t> axis);
absl::StatusOr<v1::PartialState> CountMaxPartial(std::span<const float> values,
                                                 std::span<const int64_t> shape,
                                                 std::optional<int32_t> axis);

// Adds `other` into `state` exactly (the counters add; histograms merge by
// kernels::MergeMergeable, coarsening the finer one; maxima take the element-wise max). A state
// with no batches and no `state` oneof set is the empty state and takes `other` as it is.
// INVALID_ARGUMENT, leaving `state` unchanged, for a histogram that is not canonical for
// `num_bins`, a histogram merged with a max, maxima of different lengths or axes; OUT_OF_RANGE
// for counts that would pass 2^64 - 1.
absl::Status MergePartial(v1::PartialState& state, const v1::PartialState& other, int64_t num_bins);

// Counts tensors into one histogram partial state across calls, for a trainer that counts every
// step: the same state, bit for bit, as CountHistogramPartial of each tensor merged by
// MergePartial, at about two thirds of the cost. It keeps a kernels::Histogram in the mergeable
// layout, which bins a tensor in one pass at the exponent it holds; CountHistogramPartial starts
// from nothing, so it must find the tensor's max before it can bin. Not thread-safe.
class HistogramPartialCounter {
 public:
  // INVALID_ARGUMENT for num_bins outside 1 .. 2^24.
  static absl::StatusOr<HistogramPartialCounter> Create(int64_t num_bins, bool skip_zeros);
  ~HistogramPartialCounter();
  HistogramPartialCounter(HistogramPartialCounter&&) noexcept;
  HistogramPartialCounter& operator=(HistogramPartialCounter&&) noexcept;

  // Counts one tensor (as CountHistogramPartial; its errors, the state unchanged).
  absl::Status Add(const TensorView& tensor);
  absl::Status Add(std::span<const float> values);
  // Adds a histogram partial state counted elsewhere (say on a GPU), as MergePartial would:
  // INVALID_ARGUMENT for a max state or one not canonical for num_bins; OUT_OF_RANGE for counts
  // or counters that would overflow. The state is unchanged on error.
  absl::Status Merge(const v1::PartialState& partial);

  // Batches counted since the last Take().
  int64_t batches() const { return batches_; }
  // The partial state of everything counted since the last Take() (batches 0 and no histogram
  // when nothing was), and starts again from nothing.
  v1::PartialState Take();

 private:
  explicit HistogramPartialCounter(std::unique_ptr<kernels::Histogram> histogram);

  // Never null, except in a moved-from counter. Behind a pointer to keep kernels/ out of the
  // public headers.
  std::unique_ptr<kernels::Histogram> histogram_;
  int64_t batches_ = 0;
  int64_t elements_ = 0;
  int64_t nonfinite_ = 0;
};

}  // namespace qcal

#endif  // QCAL_CLIENT_PARTIAL_STATE_H_
