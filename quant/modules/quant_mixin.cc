#include "quant/modules/quant_mixin.h"

#include <c10/util/Type.h>

#include <string_view>

#include "absl/strings/str_cat.h"
#include "quant/errors.h"

namespace qcal::quant {

QuantDescriptor DefaultQuantDesc::get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return desc_;
}

void DefaultQuantDesc::set(const QuantDescriptor& desc) {
  std::lock_guard<std::mutex> lock(mu_);
  desc_ = desc;
}

void QuantMixin::init_quantizer(const QuantMixinOptions& options,
                                const DefaultQuantDesc& default_input,
                                const DefaultQuantDesc& default_weight) {
  input_quantizer_ = register_module(
      "_input_quantizer", TensorQuantizer(options.quant_desc_input.value_or(default_input.get())));
  weight_quantizer_ =
      register_module("_weight_quantizer",
                      TensorQuantizer(options.quant_desc_weight.value_or(default_weight.get())));
}

void QuantInputMixin::init_quantizer(const QuantInputOptions& options,
                                     const DefaultQuantDesc& default_input) {
  input_quantizer_ = register_module(
      "_input_quantizer", TensorQuantizer(options.quant_desc_input.value_or(default_input.get())));
}

namespace internal {

std::string QuantModuleName(const std::type_info& float_impl) {
  return QuantModuleHeader(c10::demangle(float_impl.name()));
}

std::string QuantModuleHeader(const std::string& float_header) {
  constexpr std::string_view kTorchPrefix = "torch::nn::";
  std::string_view rest = float_header;
  if (rest.substr(0, kTorchPrefix.size()) == kTorchPrefix) rest.remove_prefix(kTorchPrefix.size());
  return "qcal::quant::Quant" + std::string(rest);
}

void ThrowCloneNotImplemented(const std::string& module) {
  ThrowNotImplemented(absl::StrCat(
      module,
      " cannot be cloned: its TensorQuantizers hold calibrator state that clone() does "
      "not copy; build a new module and load the state dict (torch::save / torch::load)"));
}

}  // namespace internal
}  // namespace qcal::quant
