// What every quantized module adds to its torch::nn twin: TensorQuantizers named
// "_input_quantizer" (and "_weight_quantizer") and per-class default descriptors.
// pytorch-quantization's QuantMixin / QuantInputMixin (nn/modules/_utils.py).
//
//   QuantConv2d conv(torch::nn::Conv2dOptions(1, 32, 3),
//                    QuantMixinOptions{.quant_desc_input = QuantDescriptor(
//                                          {.calib_method = "histogram"})});
//   conv->input_quantizer()->disable();             // the float convolution
//   QuantConv2dImpl::set_default_quant_desc_input(QuantDescriptor({.calib_method = "histogram"}));
//
// A module's descriptors: the ones given to its constructor, else its class's defaults at
// construction time (changing a default later changes no existing module, as the reference).
// The quantizers are child modules, so model->named_modules() lists them as
// "features.0._input_quantizer" and their amax buffers travel with torch::save / torch::load.
#ifndef QCAL_QUANT_MODULES_QUANT_MIXIN_H_
#define QCAL_QUANT_MODULES_QUANT_MIXIN_H_

#include <torch/nn/module.h>

#include <mutex>
#include <optional>
#include <string>
#include <typeinfo>

#include "quant/quant_descriptor.h"
#include "quant/tensor_quantizer.h"

namespace qcal::quant {

// The reference's quant_desc_input= / quant_desc_weight= keyword arguments; unset takes the
// class default.
struct QuantMixinOptions {
  std::optional<QuantDescriptor> quant_desc_input{};
  std::optional<QuantDescriptor> quant_desc_weight{};
};

// For modules that quantize only their input (pooling).
struct QuantInputOptions {
  std::optional<QuantDescriptor> quant_desc_input{};
};

// One class default descriptor (the reference's class attribute default_quant_desc_input or
// default_quant_desc_weight). Thread-safe; values are copied in and out.
class DefaultQuantDesc {
 public:
  explicit DefaultQuantDesc(QuantDescriptor desc) : desc_(std::move(desc)) {}

  QuantDescriptor get() const;
  void set(const QuantDescriptor& desc);

 private:
  mutable std::mutex mu_;
  QuantDescriptor desc_;  // guarded by mu_
};

// Owns "_input_quantizer" and "_weight_quantizer" of a module with a weight (Conv, ConvTranspose,
// Linear). Shares the module's torch::nn::Module (a virtual base, as Cloneable's).
class QuantMixin : public virtual torch::nn::Module {
 public:
  TensorQuantizer& input_quantizer() { return input_quantizer_; }
  const TensorQuantizer& input_quantizer() const { return input_quantizer_; }
  TensorQuantizer& weight_quantizer() { return weight_quantizer_; }
  const TensorQuantizer& weight_quantizer() const { return weight_quantizer_; }

 protected:
  // The reference's init_quantizer: registers both quantizers, each from `options` or else from
  // the class default.
  void init_quantizer(const QuantMixinOptions& options, const DefaultQuantDesc& default_input,
                      const DefaultQuantDesc& default_weight);

 private:
  TensorQuantizer input_quantizer_{nullptr};
  TensorQuantizer weight_quantizer_{nullptr};
};

// Owns "_input_quantizer" of a module without a weight (pooling).
class QuantInputMixin : public virtual torch::nn::Module {
 public:
  TensorQuantizer& input_quantizer() { return input_quantizer_; }
  const TensorQuantizer& input_quantizer() const { return input_quantizer_; }

 protected:
  void init_quantizer(const QuantInputOptions& options, const DefaultQuantDesc& default_input);

 private:
  TensorQuantizer input_quantizer_{nullptr};
};

namespace internal {

// The class name a quantized module reports (torch::nn::Module::name()): its float twin's with
// "torch::nn::" replaced, "torch::nn::Conv2dImpl" -> "qcal::quant::QuantConv2dImpl".
std::string QuantModuleName(const std::type_info& float_impl);

// LibTorch's pretty_print of `module`'s float twin ("torch::nn::Conv2d(1, 32, ...)") renamed to
// the quantized class ("qcal::quant::QuantConv2d(1, 32, ...)"), so the options read the same.
std::string QuantModuleHeader(const std::string& float_header);

// c10::NotImplementedError: quantizers keep calibrator state that torch::nn::Module::clone()
// cannot copy.
[[noreturn]] void ThrowCloneNotImplemented(const std::string& module);

}  // namespace internal
}  // namespace qcal::quant

#endif  // QCAL_QUANT_MODULES_QUANT_MIXIN_H_
