#include "quant/modules/quant_conv.h"

#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/padding.h>

#include <sstream>
#include <vector>

#include "quant/errors.h"

namespace qcal::quant::internal {
namespace {

namespace F = torch::nn::functional;

// The F::pad mode of a convolution's padding_mode (LibTorch's conv.cpp does the same mapping).
F::PadFuncOptions::mode_t PadMode(const torch::nn::detail::conv_padding_mode_t& mode) {
  if (c10::get_if<torch::enumtype::kReflect>(&mode)) return torch::kReflect;
  if (c10::get_if<torch::enumtype::kReplicate>(&mode)) return torch::kReplicate;
  if (c10::get_if<torch::enumtype::kCircular>(&mode)) return torch::kCircular;
  ThrowValueError("unsupported convolution padding_mode " + torch::enumtype::get_enum_name(mode));
}

const QuantDescriptor& WeightDefault(size_t dims) {
  switch (dims) {
    case 1:
      return QUANT_DESC_8BIT_CONV1D_WEIGHT_PER_CHANNEL;
    case 2:
      return QUANT_DESC_8BIT_CONV2D_WEIGHT_PER_CHANNEL;
    default:
      return QUANT_DESC_8BIT_CONV3D_WEIGHT_PER_CHANNEL;
  }
}

}  // namespace

template <size_t D, typename FloatImpl>
QuantConvNdImpl<D, FloatImpl>::QuantConvNdImpl(Options options, QuantMixinOptions quant)
    // Module is a virtual base: this most-derived class names it.
    : torch::nn::Module(QuantModuleName(typeid(FloatImpl))), FloatImpl(std::move(options)) {
  init_quantizer(quant, default_input(), default_weight());
}

template <size_t D, typename FloatImpl>
at::Tensor QuantConvNdImpl<D, FloatImpl>::forward(const at::Tensor& input) {
  at::Tensor x = input_quantizer()(input);
  const at::Tensor weight = weight_quantizer()(this->weight);
  const auto& options = this->options;
  typename F::ConvFuncOptions<D>::padding_t padding = options.padding();
  if (!c10::get_if<torch::enumtype::kZeros>(&options.padding_mode())) {
    x = F::pad(x, F::PadFuncOptions(this->_reversed_padding_repeated_twice)
                      .mode(PadMode(options.padding_mode())));
    padding = torch::ExpandingArray<D>(0);
  }
  if constexpr (D == 1) {
    return F::detail::conv1d(x, weight, this->bias, options.stride(), padding, options.dilation(),
                             options.groups());
  } else if constexpr (D == 2) {
    return F::detail::conv2d(x, weight, this->bias, options.stride(), padding, options.dilation(),
                             options.groups());
  } else {
    return F::detail::conv3d(x, weight, this->bias, options.stride(), padding, options.dilation(),
                             options.groups());
  }
}

template <size_t D, typename FloatImpl>
void QuantConvNdImpl<D, FloatImpl>::pretty_print(std::ostream& stream) const {
  std::ostringstream float_header;
  FloatImpl::pretty_print(float_header);
  stream << QuantModuleHeader(float_header.str());
}

template <size_t D, typename FloatImpl>
std::shared_ptr<torch::nn::Module> QuantConvNdImpl<D, FloatImpl>::clone(
    const c10::optional<torch::Device>& /*device*/) const {
  ThrowCloneNotImplemented(this->name());
}

template <size_t D, typename FloatImpl>
DefaultQuantDesc& QuantConvNdImpl<D, FloatImpl>::default_input() {
  static DefaultQuantDesc desc(QUANT_DESC_8BIT_PER_TENSOR);
  return desc;
}

template <size_t D, typename FloatImpl>
DefaultQuantDesc& QuantConvNdImpl<D, FloatImpl>::default_weight() {
  static DefaultQuantDesc desc(WeightDefault(D));
  return desc;
}

template class QuantConvNdImpl<1, torch::nn::Conv1dImpl>;
template class QuantConvNdImpl<2, torch::nn::Conv2dImpl>;
template class QuantConvNdImpl<3, torch::nn::Conv3dImpl>;

}  // namespace qcal::quant::internal
