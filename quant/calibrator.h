// What every calibrator does: pytorch-quantization's _Calibrator (calib/calibrator.py). A
// calibrator collects statistics of the tensors a TensorQuantizer sees in calibration mode
// and turns them into an amax.
//
//   std::shared_ptr<Calibrator> calib = MakeCalibrator(QuantDescriptor({.axis = 0}));
//   calib->collect(weight);                           // any number of batches
//   std::optional<at::Tensor> amax = calib->compute_amax();   // [K, 1, 1, 1]
//
// Implementations: MaxCalibrator, HistogramCalibrator (this library, on kernels/) and
// RemoteCalibrator (remote_calibrator.h, on a qcal-server). Not thread-safe: a calibrator
// belongs to one quantizer, used from one thread at a time.
#ifndef QCAL_QUANT_CALIBRATOR_H_
#define QCAL_QUANT_CALIBRATOR_H_

#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <string>

#include "quant/quant_descriptor.h"

namespace qcal::quant {

// The arguments of compute_amax / load_calib_amax (the reference's
// compute_amax(method, *, stride=1, start_bin=128, percentile=99.99)).
struct CalibAmaxArgs {
  // "entropy", "mse", "percentile" or "max" for histogram calibrators (required there);
  // max calibrators take "" or any of these and always report their max, as the reference's
  // calibration loop calls them without a method.
  std::string method{};
  // entropy and mse: the first candidate bin and the step between candidates.
  int start_bin = 128;
  int stride = 1;
  // percentile: in (0, 100].
  double percentile = 99.99;
};

class Calibrator {
 public:
  Calibrator(int num_bits, QuantAxis axis, bool is_unsigned)
      : num_bits_(num_bits), axis_(std::move(axis)), is_unsigned_(is_unsigned) {}
  virtual ~Calibrator() = default;
  Calibrator(const Calibrator&) = delete;
  Calibrator& operator=(const Calibrator&) = delete;

  // Folds one batch into the state: a floating tensor of any dtype and device (read as
  // float32 on the CPU; no gradient flows). NaN and +-inf are counted (nonfinite()) and left
  // out, unlike the reference. Errors leave the state unchanged.
  virtual void collect(const at::Tensor& inputs) = 0;
  // Forgets everything collected.
  virtual void reset() = 0;
  // The amax of what was collected (float32, CPU): 0-d per tensor, else the kept axes' sizes
  // with 1 elsewhere; std::nullopt when nothing was collected (the reference's None).
  // c10::ValueError for bad arguments (checked first, whatever the data).
  virtual std::optional<at::Tensor> compute_amax(const CalibAmaxArgs& args = {}) = 0;

  // The class name the quantizer's summary prints: "MaxCalibrator".
  virtual std::string name() const = 0;
  // The reference's __str__ and __repr__.
  virtual std::string str() const = 0;
  virtual std::string repr() const = 0;

  int num_bits() const { return num_bits_; }
  const QuantAxis& axis() const { return axis_; }
  bool is_unsigned() const { return is_unsigned_; }
  // NaN and +-inf values seen (and left out) so far.
  int64_t nonfinite() const { return nonfinite_; }

 protected:
  // "num_bits=8 axis=None unsigned=False", the reference's _Calibrator.__repr__.
  std::string BaseRepr() const;

  int64_t nonfinite_ = 0;

 private:
  const int num_bits_;
  const QuantAxis axis_;
  const bool is_unsigned_;
};

// The calibrator a descriptor asks for: a MaxCalibrator, or a HistogramCalibrator for
// calib_method "histogram" (c10::NotImplementedError with a per-channel axis, as the
// reference).
std::shared_ptr<Calibrator> MakeCalibrator(const QuantDescriptor& desc);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_CALIBRATOR_H_
