// Quantized convolutions: pytorch-quantization's QuantConv1d / QuantConv2d / QuantConv3d
// (nn/modules/quant_conv.py), drop-ins for torch::nn::Conv1d/2d/3d.
//
//   using namespace qcal::quant;
//   QuantConv2d conv(torch::nn::Conv2dOptions(1, 32, 3).padding(1));   // class defaults
//   QuantConv2d conv2(torch::nn::Conv2dOptions(32, 64, 3),
//                     QuantMixinOptions{.quant_desc_weight = QuantDescriptor({.axis = 0})});
//   at::Tensor y = conv(x);   // conv2d(input_quantizer(x), weight_quantizer(weight), bias, ...)
//   QuantConv2dImpl::set_default_quant_desc_input(QuantDescriptor({.calib_method = "histogram"}));
//
// Each class is its torch::nn twin (same options, "weight" and "bias" parameters, initialisation
// and padding modes) plus the quantizers of quant_mixin.h. Class defaults, as the reference's:
// input QUANT_DESC_8BIT_PER_TENSOR, weight QUANT_DESC_8BIT_CONV{1,2,3}D_WEIGHT_PER_CHANNEL
// (8-bit, axis 0: one amax per output channel, [K, 1, ...] for a [K, C/groups, ...] weight).
// forward(input): input [N, C, *] (or [C, *] unbatched), any floating dtype torch's conv takes;
// the input is quantized first and then padded for a non-zeros padding_mode, as the reference.
// With both quantizers disabled the output equals the float module's bit for bit.
// Errors: torch's (c10::Error) for bad options or input shapes; the quantizers'
// (tensor_quantizer.h). clone() is a c10::NotImplementedError (quantizer state is not copyable);
// save and load instead.
#ifndef QCAL_QUANT_MODULES_QUANT_CONV_H_
#define QCAL_QUANT_MODULES_QUANT_CONV_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/conv.h>

#include <cstddef>
#include <memory>
#include <ostream>

#include "quant/modules/quant_mixin.h"
#include "quant/quant_descriptor.h"

namespace qcal::quant {
namespace internal {

// What QuantConv1d/2d/3d share; FloatImpl is torch::nn::Conv{D}dImpl.
template <size_t D, typename FloatImpl>
class QuantConvNdImpl : public FloatImpl, public QuantMixin {
 public:
  using Options = torch::nn::ConvOptions<D>;

  QuantConvNdImpl(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<D> kernel_size,
                  QuantMixinOptions quant = {})
      : QuantConvNdImpl(Options(in_channels, out_channels, kernel_size), std::move(quant)) {}
  explicit QuantConvNdImpl(Options options, QuantMixinOptions quant = {});

  at::Tensor forward(const at::Tensor& input);

  static QuantDescriptor default_quant_desc_input() { return default_input().get(); }
  static QuantDescriptor default_quant_desc_weight() { return default_weight().get(); }
  static void set_default_quant_desc_input(const QuantDescriptor& desc) {
    default_input().set(desc);
  }
  static void set_default_quant_desc_weight(const QuantDescriptor& desc) {
    default_weight().set(desc);
  }

  // "qcal::quant::QuantConv2d(1, 32, kernel_size=[3, 3], stride=[1, 1])"; LibTorch prints the
  // quantizers below it.
  void pretty_print(std::ostream& stream) const override;
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;

 private:
  static DefaultQuantDesc& default_input();
  static DefaultQuantDesc& default_weight();
};

extern template class QuantConvNdImpl<1, torch::nn::Conv1dImpl>;
extern template class QuantConvNdImpl<2, torch::nn::Conv2dImpl>;
extern template class QuantConvNdImpl<3, torch::nn::Conv3dImpl>;

}  // namespace internal

// Aliases, not subclasses: torch::nn::AnyModule (Sequential's ptr<T>() and get<T>()) finds a
// module's type through &T::forward, which must be declared in T itself.
using QuantConv1dImpl = internal::QuantConvNdImpl<1, torch::nn::Conv1dImpl>;
using QuantConv2dImpl = internal::QuantConvNdImpl<2, torch::nn::Conv2dImpl>;
using QuantConv3dImpl = internal::QuantConvNdImpl<3, torch::nn::Conv3dImpl>;
TORCH_MODULE(QuantConv1d);
TORCH_MODULE(QuantConv2d);
TORCH_MODULE(QuantConv3d);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_MODULES_QUANT_CONV_H_
