// Running max of |x|, per tensor or per channel: pytorch-quantization's MaxCalibrator.
//
//   qcal::kernels::MaxCalibrator calib(/*axis=*/0);
//   auto stats = calib.Collect(values, shape);   // values: float32, row-major, prod(shape)
//   calib.amax();                                // one float per channel of axis 0
//
// amax is the max of |x| over every axis but the kept one(s), folded over batches with max.
// Unlike the reference, NaN and +-inf are counted and left out (the reference lets NaN poison
// amax), and an axis outside the tensor's rank is refused (the reference silently reduces
// every axis). Not thread-safe: callers serialise access to one instance.
#ifndef QCAL_KERNELS_MAX_CALIBRATOR_H_
#define QCAL_KERNELS_MAX_CALIBRATOR_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/collect_stats.h"

namespace qcal::kernels {

class MaxCalibrator {
 public:
  // `axis`: nullopt for per-tensor; otherwise the kept (channel) axis, negative counting from the
  // end of each batch's shape.
  explicit MaxCalibrator(std::optional<int> axis);
  // Several kept axes (the reference's axis tuple, e.g. {0, 1}); amax then has one value per
  // combination, row-major over the kept axes in tensor order. An empty list is per-tensor.
  explicit MaxCalibrator(std::vector<int> axes);

  // Folds max|x| of the finite values of one batch into the state. `x.size()` must equal
  // prod(shape); a rank-0 shape is a scalar. Large batches use all cores.
  // Errors (state unchanged): INVALID_ARGUMENT when a dimension is negative, the size does not
  // match the shape, the batch is empty, an axis is out of range for the rank (or repeated), or
  // the kept dimensions differ from earlier batches.
  absl::StatusOr<CollectStats> Collect(std::span<const float> x, std::span<const int64_t> shape);

  // True until a batch has been collected.
  bool empty() const { return amax_.empty(); }
  // One value per tensor, or prod(channel_shape()) values; 0 where every value seen was 0 or
  // non-finite.
  const std::vector<float>& amax() const { return amax_; }
  // Sizes of the kept axes, e.g. {K} for axis 0 of a KCRS weight; empty per-tensor or before
  // the first batch.
  const std::vector<int64_t>& channel_shape() const { return channel_shape_; }
  // The kept axis (the first one when several were given); nullopt per-tensor.
  std::optional<int> axis() const;
  const std::vector<int>& axes() const { return axes_; }
  void Reset() {
    amax_.clear();
    channel_shape_.clear();
  }

 private:
  // Constant after construction.
  std::vector<int> axes_;

  std::vector<float> amax_;
  std::vector<int64_t> channel_shape_;
};

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_MAX_CALIBRATOR_H_
