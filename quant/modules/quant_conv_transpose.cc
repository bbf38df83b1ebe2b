#include "quant/modules/quant_conv_transpose.h"

#include <torch/nn/functional/conv.h>

#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quant/errors.h"

namespace qcal::quant::internal {
namespace {

namespace F = torch::nn::functional;

const QuantDescriptor& WeightDefault(size_t dims) {
  switch (dims) {
    case 1:
      return QUANT_DESC_8BIT_CONVTRANSPOSE1D_WEIGHT_PER_CHANNEL;
    case 2:
      return QUANT_DESC_8BIT_CONVTRANSPOSE2D_WEIGHT_PER_CHANNEL;
    default:
      return QUANT_DESC_8BIT_CONVTRANSPOSE3D_WEIGHT_PER_CHANNEL;
  }
}

// torch.nn.modules.conv._ConvTransposeNd._output_padding: the options' output_padding, or the
// one that makes the output output_size (spatial sizes, or with the batch and channel sizes).
template <size_t D>
std::vector<int64_t> OutputPadding(const at::Tensor& input,
                                   const c10::optional<at::IntArrayRef>& output_size,
                                   const torch::nn::detail::ConvNdOptions<D>& options) {
  if (!output_size.has_value()) return at::IntArrayRef(options.output_padding()).vec();
  const int64_t non_spatial = input.dim() == static_cast<int64_t>(D) + 2 ? 2 : 1;
  at::IntArrayRef sizes = *output_size;
  if (sizes.size() == D + static_cast<size_t>(non_spatial)) sizes = sizes.slice(non_spatial);
  if (sizes.size() != D) {
    ThrowValueError(absl::StrCat("ConvTranspose", D, "d: output_size must have ", D, " or ",
                                 D + non_spatial, " elements (got ", output_size->size(), ")"));
  }
  if (input.dim() < static_cast<int64_t>(D) + non_spatial) {
    ThrowValueError(absl::StrCat("ConvTranspose", D, "d: input of shape ", c10::str(input.sizes()),
                                 " has fewer than ", D, " spatial dims"));
  }
  const auto& stride = *options.stride();
  const auto& padding = *c10::get<torch::ExpandingArray<D>>(options.padding());
  const auto& dilation = *options.dilation();
  const auto& kernel = *options.kernel_size();
  std::vector<int64_t> result(D);
  for (size_t d = 0; d < D; ++d) {
    const int64_t min_size = (input.size(static_cast<int64_t>(d) + non_spatial) - 1) * stride[d] -
                             2 * padding[d] + dilation[d] * (kernel[d] - 1) + 1;
    const int64_t max_size = min_size + stride[d] - 1;
    if (sizes[d] < min_size || sizes[d] > max_size) {
      ThrowValueError(absl::StrCat("ConvTranspose", D, "d: requested an output size of ",
                                   c10::str(sizes), ", but valid sizes range from ", min_size,
                                   " to ", max_size, " in dimension ", d,
                                   " (for an input of shape ", c10::str(input.sizes()), ")"));
    }
    result[d] = sizes[d] - min_size;
  }
  return result;
}

}  // namespace

template <size_t D, typename FloatImpl>
QuantConvTransposeNdImpl<D, FloatImpl>::QuantConvTransposeNdImpl(Options options,
                                                                 QuantMixinOptions quant)
    // Module is a virtual base: this most-derived class names it.
    : torch::nn::Module(QuantModuleName(typeid(FloatImpl))), FloatImpl(std::move(options)) {
  init_quantizer(quant, default_input(), default_weight());
}

template <size_t D, typename FloatImpl>
at::Tensor QuantConvTransposeNdImpl<D, FloatImpl>::forward(
    const at::Tensor& input, const c10::optional<at::IntArrayRef>& output_size) {
  const auto& options = this->options;
  if (!c10::get_if<torch::enumtype::kZeros>(&options.padding_mode())) {
    ThrowValueError(
        absl::StrCat("Only `zeros` padding mode is supported for QuantConvTranspose", D, "d"));
  }
  // Checked before the quantizers see anything: a bad output_size changes no calibrator.
  const std::vector<int64_t> output_padding = OutputPadding<D>(input, output_size, options);
  const at::Tensor x = input_quantizer()(input);
  const at::Tensor weight = weight_quantizer()(this->weight);
  const torch::ExpandingArray<D>& padding = this->padding();
  if constexpr (D == 1) {
    return F::detail::conv_transpose1d(x, weight, this->bias, options.stride(), padding,
                                       output_padding, options.groups(), options.dilation());
  } else if constexpr (D == 2) {
    return F::detail::conv_transpose2d(x, weight, this->bias, options.stride(), padding,
                                       output_padding, options.groups(), options.dilation());
  } else {
    return F::detail::conv_transpose3d(x, weight, this->bias, options.stride(), padding,
                                       output_padding, options.groups(), options.dilation());
  }
}

template <size_t D, typename FloatImpl>
void QuantConvTransposeNdImpl<D, FloatImpl>::pretty_print(std::ostream& stream) const {
  std::ostringstream float_header;
  FloatImpl::pretty_print(float_header);
  stream << QuantModuleHeader(float_header.str());
}

template <size_t D, typename FloatImpl>
std::shared_ptr<torch::nn::Module> QuantConvTransposeNdImpl<D, FloatImpl>::clone(
    const c10::optional<torch::Device>& /*device*/) const {
  ThrowCloneNotImplemented(this->name());
}

template <size_t D, typename FloatImpl>
DefaultQuantDesc& QuantConvTransposeNdImpl<D, FloatImpl>::default_input() {
  static DefaultQuantDesc desc(QUANT_DESC_8BIT_PER_TENSOR);
  return desc;
}

template <size_t D, typename FloatImpl>
DefaultQuantDesc& QuantConvTransposeNdImpl<D, FloatImpl>::default_weight() {
  static DefaultQuantDesc desc(WeightDefault(D));
  return desc;
}

template class QuantConvTransposeNdImpl<1, torch::nn::ConvTranspose1dImpl>;
template class QuantConvTransposeNdImpl<2, torch::nn::ConvTranspose2dImpl>;
template class QuantConvTransposeNdImpl<3, torch::nn::ConvTranspose3dImpl>;

}  // namespace qcal::quant::internal
