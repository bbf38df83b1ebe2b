#include "quant/modules/quant_pooling.h"

#include <sstream>

namespace qcal::quant::internal {

template <typename FloatImpl, typename Size>
QuantPoolImpl<FloatImpl, Size>::QuantPoolImpl(const Options& options, QuantInputOptions quant)
    // Module is a virtual base: this most-derived class names it.
    : torch::nn::Module(QuantModuleName(typeid(FloatImpl))), FloatImpl(options) {
  init_quantizer(quant, default_input());
}

template <typename FloatImpl, typename Size>
void QuantPoolImpl<FloatImpl, Size>::pretty_print(std::ostream& stream) const {
  std::ostringstream float_header;
  FloatImpl::pretty_print(float_header);
  stream << QuantModuleHeader(float_header.str());
}

template <typename FloatImpl, typename Size>
std::shared_ptr<torch::nn::Module> QuantPoolImpl<FloatImpl, Size>::clone(
    const c10::optional<torch::Device>& /*device*/) const {
  ThrowCloneNotImplemented(this->name());
}

template <typename FloatImpl, typename Size>
DefaultQuantDesc& QuantPoolImpl<FloatImpl, Size>::default_input() {
  static DefaultQuantDesc desc(QUANT_DESC_8BIT_PER_TENSOR);
  return desc;
}

template class QuantPoolImpl<torch::nn::MaxPool1dImpl, torch::ExpandingArray<1>>;
template class QuantPoolImpl<torch::nn::MaxPool2dImpl, torch::ExpandingArray<2>>;
template class QuantPoolImpl<torch::nn::MaxPool3dImpl, torch::ExpandingArray<3>>;
template class QuantPoolImpl<torch::nn::AvgPool1dImpl, torch::ExpandingArray<1>>;
template class QuantPoolImpl<torch::nn::AvgPool2dImpl, torch::ExpandingArray<2>>;
template class QuantPoolImpl<torch::nn::AvgPool3dImpl, torch::ExpandingArray<3>>;
template class QuantPoolImpl<torch::nn::AdaptiveAvgPool1dImpl, torch::ExpandingArray<1>>;
template class QuantPoolImpl<torch::nn::AdaptiveAvgPool2dImpl, AdaptiveSize<2>>;
template class QuantPoolImpl<torch::nn::AdaptiveAvgPool3dImpl, AdaptiveSize<3>>;

}  // namespace qcal::quant::internal
