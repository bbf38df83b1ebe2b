// Running max of |x|, per tensor or per channel: pytorch-quantization's MaxCalibrator
// (calib/max.py), on kernels/max_calibrator.h.
//
//   qcal::quant::MaxCalibrator calib({.axis = 0, .track_amax = true});
//   calib.collect(w1);
//   calib.collect(w2);
//   at::Tensor amax = *calib.compute_amax();   // [K, 1, 1, 1], max |w| per output channel
//
// amax keeps size-1 dimensions for the reduced axes ([C,1,1,1] for axis 0 of a 4-D tensor,
// [1,C] for axis 1 of a 2-D one) and is 0-d when it has one element, as the reference.
// Deliberate differences from the reference: NaN and +-inf are counted and left out (the
// reference's amax becomes NaN or inf for good); an axis outside the batch's rank is refused
// with c10::ValueError (the reference silently reduces every axis); with track_amax, amaxs()[0]
// is the first batch's own amax (the reference's first entry aliases the running amax).
// Errors (state unchanged): c10::ValueError for an empty batch or a bad axis; c10::Error
// ("amax shape changed") when a batch's amax shape differs from the earlier batches'.
#ifndef QCAL_QUANT_MAX_CALIBRATOR_H_
#define QCAL_QUANT_MAX_CALIBRATOR_H_

#include <vector>

#include "kernels/max_calibrator.h"
#include "quant/calibrator.h"

namespace qcal::quant {

class MaxCalibrator : public Calibrator {
 public:
  struct Options {
    int num_bits = 8;
    QuantAxis axis{};
    bool is_unsigned = false;
    // Keep each batch's own amax (amaxs()).
    bool track_amax = false;
  };

  explicit MaxCalibrator(Options options);

  void collect(const at::Tensor& inputs) override;
  void reset() override;
  // `args` is checked (an unknown method is a c10::ValueError) and otherwise ignored.
  std::optional<at::Tensor> compute_amax(const CalibAmaxArgs& args = {}) override;

  std::string name() const override { return "MaxCalibrator"; }
  // "MaxCalibrator(track_amax=False)".
  std::string str() const override;
  // "MaxCalibrator(num_bits=8 axis=None unsigned=False calib_amax=2.5 track_amax=False)".
  std::string repr() const override;

  bool track_amax() const { return track_amax_; }
  // With track_amax, each collected batch's own amax, shaped like compute_amax().
  const std::vector<at::Tensor>& amaxs() const { return amaxs_; }

 private:
  // A kernels calibrator for this quantizer's axis.
  kernels::MaxCalibrator NewKernel() const;

  const bool track_amax_;
  kernels::MaxCalibrator calib_;
  // Shape of the amax (empty before the first batch; {} for 0-d is told apart by calib_.empty()).
  std::vector<int64_t> amax_shape_;
  std::vector<at::Tensor> amaxs_;
};

}  // namespace qcal::quant

#endif  // QCAL_QUANT_MAX_CALIBRATOR_H_
