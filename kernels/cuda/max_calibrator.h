// Running max of |x| per tensor or per channel, its state in device memory: the CUDA twin of
// kernels::MaxCalibrator (pytorch-quantization's MaxCalibrator), with the same amax bit for bit
// and the same errors.
//
//   auto calib = qcal::kernels::cuda::MaxCalibrator::Create(gpu, {0});   // axis 0
//   auto stats = (*calib)->Collect(values, shape);    // float32 host span, or a BatchRef
//   auto amax = (*calib)->amax();                     // copied back: one float per channel
//
// Not thread-safe: callers serialise access to one instance (the Context is shared safely).
#ifndef QCAL_KERNELS_CUDA_MAX_CALIBRATOR_H_
#define QCAL_KERNELS_CUDA_MAX_CALIBRATOR_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/collect_stats.h"
#include "kernels/cuda/batch_ref.h"
#include "kernels/cuda/context.h"

namespace qcal::kernels::cuda {

namespace internal {
class DeviceBuffer;
}  // namespace internal

class MaxCalibrator {
 public:
  // `axes`: the kept (channel) axes, negative counting from the end of each batch's shape; empty
  // for per-tensor. As kernels::MaxCalibrator(std::vector<int>). Never fails today; the StatusOr
  // leaves room for device-side setup.
  static absl::StatusOr<std::unique_ptr<MaxCalibrator>> Create(std::shared_ptr<Context> context,
                                                               std::vector<int> axes);
  ~MaxCalibrator();
  MaxCalibrator(const MaxCalibrator&) = delete;
  MaxCalibrator& operator=(const MaxCalibrator&) = delete;

  // Folds max|x| of the finite values of one batch (row-major, prod(shape) elements of any dtype,
  // in any memory: batch_ref.h) into the state.
  // Errors, state unchanged: kernels::MaxCalibrator::Collect's INVALID_ARGUMENT cases (negative
  // dimension, size not matching the shape, empty batch, axis out of range or repeated, kept
  // dimensions differing from earlier batches), those of CheckBatchRef, INVALID_ARGUMENT for more
  // than 16 alternating kept/reduced runs of axes; RESOURCE_EXHAUSTED when device memory runs
  // out. INTERNAL for a CUDA failure (then the state may hold part of the batch).
  absl::StatusOr<CollectStats> Collect(const BatchRef& batch, std::span<const int64_t> shape);
  absl::StatusOr<CollectStats> Collect(std::span<const float> x, std::span<const int64_t> shape) {
    return Collect(BatchRef::Float32(x), shape);
  }

  bool empty() const { return amax_size_ == 0; }
  // One value per tensor or prod(channel_shape()) values (copied from the device); empty before
  // the first batch. INTERNAL for a CUDA failure.
  absl::StatusOr<std::vector<float>> amax() const;
  // Values amax() will return, without touching the device.
  int64_t amax_size() const { return amax_size_; }
  const std::vector<int64_t>& channel_shape() const { return channel_shape_; }
  const std::vector<int>& axes() const { return axes_; }
  // Drops the state (and frees its device memory).
  void Reset();

 private:
  MaxCalibrator(std::shared_ptr<Context> context, std::vector<int> axes);

  // Constant after construction.
  const std::shared_ptr<Context> context_;
  const std::vector<int> axes_;

  // |amax| bits per channel on the device; null while empty.
  std::unique_ptr<internal::DeviceBuffer> bits_;
  int64_t amax_size_ = 0;
  std::vector<int64_t> channel_shape_;
};

}  // namespace qcal::kernels::cuda

#endif  // QCAL_KERNELS_CUDA_MAX_CALIBRATOR_H_
