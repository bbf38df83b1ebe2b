// TensorQuantizer: quantizes the tensors that pass through it, calibrates its amax, or learns
// it; pytorch-quantization's TensorQuantizer (nn/modules/tensor_quantizer.py) as a LibTorch
// module.
//
//   using namespace qcal::quant;
//   TensorQuantizer quantizer(QuantDescriptor({.calib_method = "histogram"}));
//   quantizer->disable_quant();  quantizer->enable_calib();      // calibration mode
//   for (const at::Tensor& x : batches) quantizer(x);            // collects, returns x
//   quantizer->load_calib_amax({.method = "entropy"});
//   quantizer->disable_calib();  quantizer->enable_quant();
//   at::Tensor y = quantizer(x);                                 // fake-quantized, STE backward
//   std::cout << quantizer->str();
//   // TensorQuantizer(8bit fake per-tensor amax=2.6400 calibrator=HistogramCalibrator scale=1.0
//   quant)
//
// forward(inputs), in the reference's order: disabled -> inputs unchanged; calib enabled ->
// the calibrator collects inputs; clip enabled (learn_amax only) -> the clip stage; quant
// enabled -> fake_tensor_quant(inputs, amax, num_bits, unsigned, narrow_range) (fake_quant) or
// tensor_quant(inputs, amax, num_bits, unsigned) (real quantization, which always uses the
// narrow range [-bound, bound] as the reference, and records scale()). An FP8 E4M3 descriptor
// (format kFp8E4M3, the reference's num_bits=(4, 3)) runs fake_tensor_quant_fp8(inputs, amax)
// (values on the E4M3 grid scaled by amax / 448, saturating at +-amax) or tensor_quant_fp8
// (the E4M3 values of inputs / (amax / 448), in [-448, 448]; scale() records 448 / amax), as
// ModelOpt's TensorQuantizer with num_bits=(4, 3) (tensor_quant.h gives the rounding rules).
// The output has inputs' shape and dtype; gradients follow the straight-through estimator
// (tensor_quant.h).
// amax: the "_amax" buffer once set (set_amax, load_calib_amax, the descriptor's amax), else
// "dynamic": max |x| of each input over the non-axis dimensions (reduce_amax.h); times
// scale_amax when the descriptor has one. With learn_amax the input first passes clip(x, min,
// max) with learnable 0-d parameters clip.clip_value_min / clip_value_max (initialised to -amax,
// +amax; amax defaults to 1), and amax = max(-min, max).
//
// The calibrator comes from the descriptor (MakeCalibrator) and can be replaced, e.g. by a
// RemoteCalibrator that streams to a qcal-server (remote_calibrator.h).
//
// Errors (c10, errors.h): c10::Error for calibrating without a calibrator, load_calib_amax when
// the calibrator has seen nothing (strict), enable_clip without learn_amax, set_amax with a new
// shape, a dynamic amax of an empty input; c10::ValueError for bad values (amax < 0, an axis
// outside the input's rank, which the reference silently reduces to per-tensor, unsigned
// quantization of negative inputs). A call that throws changes no state, except that a forward
// whose calibrator collected before quantization failed keeps that batch.
// Not thread-safe (like any module whose forward updates state).
#ifndef QCAL_QUANT_TENSOR_QUANTIZER_H_
#define QCAL_QUANT_TENSOR_QUANTIZER_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "quant/calibrator.h"
#include "quant/clip.h"
#include "quant/quant_descriptor.h"

namespace qcal::quant {

class TensorQuantizerImpl : public torch::nn::Module {
 public:
  // The reference's TensorQuantizer(quant_desc, disabled, if_quant, if_clip, if_calib). A
  // descriptor with an amax registers it as the "_amax" buffer; learn_amax creates the clip stage
  // and enables it. c10::ValueError when learn_amax comes with an amax of several values.
  explicit TensorQuantizerImpl(QuantDescriptor desc = QuantDescriptor(), bool disabled = false,
                               bool if_quant = true, bool if_clip = false, bool if_calib = false);

  at::Tensor forward(const at::Tensor& inputs);

  // --- modes ------------------------------------------------------------------------------
  void disable() { disabled_ = true; }
  void enable() { disabled_ = false; }
  void disable_quant() { if_quant_ = false; }
  void enable_quant() { if_quant_ = true; }
  void disable_calib() { if_calib_ = false; }
  // c10::Error without a calibrator.
  void enable_calib();
  void disable_clip() { if_clip_ = false; }
  // c10::ValueError unless the descriptor has learn_amax (as the reference).
  void enable_clip();
  bool is_enabled() const { return !disabled_; }
  bool is_quant_enabled() const { return if_quant_; }
  bool is_calib_enabled() const { return if_calib_; }
  bool is_clip_enabled() const { return if_clip_; }

  // --- amax -------------------------------------------------------------------------------
  // The "_amax" buffer; std::nullopt while amax is dynamic.
  std::optional<at::Tensor> amax() const;
  // Sets amax (0-d for a float, 1-D for a vector). The first value registers the buffer (on
  // the CPU); later ones must keep its shape (c10::Error otherwise, as the reference) and are
  // copied to its device. c10::ValueError for a negative value; NaN and inf are accepted as in
  // the reference (they quantize everything to NaN).
  void set_amax(const at::Tensor& value);
  void set_amax(double value);
  void set_amax(const std::vector<float>& values);
  // Sets amax from the calibrator: compute_amax(args). When the calibrator has seen nothing,
  // strict throws c10::Error and !strict sets amax to NaN (the reference's strict=False).
  void load_calib_amax(const CalibAmaxArgs& args = {}, bool strict = true);
  // learn_amax: copies amax (its max when per-channel) into the clip bounds as [-amax, amax].
  // c10::Error without learn_amax or without an amax.
  void init_learn_amax();

  // --- the rest of the state --------------------------------------------------------------
  const QuantDescriptor& descriptor() const { return desc_; }
  int num_bits() const { return desc_.num_bits(); }
  // 2^(num_bits - 1 + unsigned) - 1.
  int64_t maxbound() const { return desc_.bound(); }
  bool is_unsigned() const { return desc_.is_unsigned(); }
  bool narrow_range() const { return desc_.narrow_range(); }
  bool fake_quant() const { return desc_.fake_quant(); }
  const QuantAxis& axis() const { return desc_.axis(); }
  bool learn_amax() const { return desc_.learn_amax(); }
  const std::optional<double>& scale_amax() const { return desc_.scale_amax(); }
  // 1.0 for fake quantization; the scale of the last real-quantization forward (bound / amax,
  // amax's shape), std::nullopt before it.
  std::optional<at::Tensor> scale() const;
  // The clip stage (learn_amax), else an empty holder.
  const Clip& clip() const { return clip_; }

  // May be null only after set_calibrator(nullptr).
  const std::shared_ptr<Calibrator>& calibrator() const { return calibrator_; }
  void set_calibrator(std::shared_ptr<Calibrator> calibrator) {
    calibrator_ = std::move(calibrator);
  }

  // --- printing ---------------------------------------------------------------------------
  // The reference's extra_repr: "8bit fake per-tensor amax=dynamic calibrator=MaxCalibrator
  // scale=1.0 quant", "unsigned 4bit axis=0 amax=[0.1000, 2.0000](8) ...", "disabled".
  std::string extra_repr() const;
  // repr(quantizer) as Python prints it: "TensorQuantizer(<extra_repr>)", or one line per part
  // ("TensorQuantizer(\n  ...\n  (clip): Clip()\n)") when there is a clip stage or the extra
  // repr spans lines (a per-channel scale tensor).
  std::string repr() const;
  // The one-line summary: "TensorQuantizer(<extra_repr>)" (a tensor scale as [min, max](n)).
  std::string str() const;
  // Prints str() (LibTorch adds the children).
  void pretty_print(std::ostream& stream) const override;

  // Also reads "_amax" from an archive saved after calibration into a quantizer whose amax is
  // still dynamic (the reference's _load_from_state_dict does the same).
  void load(torch::serialize::InputArchive& archive) override;

 private:
  at::Tensor GetAmax(const at::Tensor& inputs) const;
  at::Tensor QuantForward(const at::Tensor& inputs);
  std::string ExtraRepr(bool python_scale) const;

  const QuantDescriptor desc_;
  bool disabled_;
  bool if_quant_;
  bool if_clip_ = false;
  bool if_calib_;
  // Undefined while amax is dynamic; the registered "_amax" buffer once set.
  at::Tensor amax_;
  // 1.0 (fake) or the last real-quant scale; undefined before that.
  at::Tensor scale_;
  Clip clip_{nullptr};
  std::shared_ptr<Calibrator> calibrator_;
};

TORCH_MODULE(TensorQuantizer);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_TENSOR_QUANTIZER_H_
