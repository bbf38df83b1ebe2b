// Running max of |x|, per tensor or per channel: pytorch-quantization's MaxCalibrator.
//
//   qcal::kernels::MaxCalibrator calib(/*axis=*/0);
//   auto stats = calib.Collect(values, shape);   // values: float32, row-major, prod(shape)
//   calib.amax();                                // one float per channel of axis 0
//
// Unlike the reference, NaN and +-inf are counted and left out (the reference lets NaN poison
// amax), and an axis outside the tensor's rank is refused (the reference silently reduces
// every axis).
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

  // Folds max|x| of the finite values of one batch into the state. `x.size()` must equal
  // prod(shape); a rank-0 shape is a scalar.
  // Errors (state unchanged): INVALID_ARGUMENT when the size does not match the shape, the batch
  // is empty, the axis is out of range for the rank, or shape[axis] differs from earlier batches.
  absl::StatusOr<CollectStats> Collect(std::span<const float> x, std::span<const int64_t> shape);

  // True until a batch has been collected.
  bool empty() const { return amax_.empty(); }
  // One value per tensor, or shape[axis] values; 0 where every value seen was 0 or non-finite.
  const std::vector<float>& amax() const { return amax_; }
  std::optional<int> axis() const { return axis_; }
  void Reset() { amax_.clear(); }

 private:
  std::optional<int> axis_;
  std::vector<float> amax_;
};

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_MAX_CALIBRATOR_H_
