#include "quant/modules/quant_linear.h"

#include <torch/nn/functional/linear.h>

#include <sstream>

namespace qcal::quant {
namespace {

DefaultQuantDesc& DefaultInput() {
  static DefaultQuantDesc desc(QUANT_DESC_8BIT_PER_TENSOR);
  return desc;
}

DefaultQuantDesc& DefaultWeight() {
  static DefaultQuantDesc desc(QUANT_DESC_8BIT_LINEAR_WEIGHT_PER_ROW);
  return desc;
}

}  // namespace

QuantLinearImpl::QuantLinearImpl(const torch::nn::LinearOptions& options, QuantMixinOptions quant)
    : torch::nn::LinearImpl(options) {
  init_quantizer(quant, DefaultInput(), DefaultWeight());
}

at::Tensor QuantLinearImpl::forward(const at::Tensor& input) {
  return torch::nn::functional::linear(input_quantizer()(input), weight_quantizer()(weight), bias);
}

QuantDescriptor QuantLinearImpl::default_quant_desc_input() { return DefaultInput().get(); }
QuantDescriptor QuantLinearImpl::default_quant_desc_weight() { return DefaultWeight().get(); }
void QuantLinearImpl::set_default_quant_desc_input(const QuantDescriptor& desc) {
  DefaultInput().set(desc);
}
void QuantLinearImpl::set_default_quant_desc_weight(const QuantDescriptor& desc) {
  DefaultWeight().set(desc);
}

void QuantLinearImpl::pretty_print(std::ostream& stream) const {
  std::ostringstream float_header;
  torch::nn::LinearImpl::pretty_print(float_header);
  stream << internal::QuantModuleHeader(float_header.str());
}

std::shared_ptr<torch::nn::Module> QuantLinearImpl::clone(
    const c10::optional<torch::Device>& /*device*/) const {
  internal::ThrowCloneNotImplemented(name());
}

}  // namespace qcal::quant
