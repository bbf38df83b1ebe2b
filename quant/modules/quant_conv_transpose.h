// Quantized transposed convolutions: pytorch-quantization's QuantConvTranspose1d / 2d / 3d
// (nn/modules/quant_conv.py), drop-ins for torch::nn::ConvTranspose1d/2d/3d.
//
//   using namespace qcal::quant;
//   QuantConvTranspose2d up(torch::nn::ConvTranspose2dOptions(64, 32, 2).stride(2));
//   at::Tensor y = up(x);                 // conv_transpose2d(input_q, weight_q, bias, ...)
//   at::Tensor z = up(x, at::IntArrayRef({15, 15}));   // output_size picks output_padding
//
// Each class is its torch::nn twin (same options, "weight" [C_in, C_out/groups, k...] and "bias")
// plus the quantizers of quant_mixin.h. Class defaults, as the reference's: input
// QUANT_DESC_8BIT_PER_TENSOR, weight QUANT_DESC_8BIT_CONVTRANSPOSE{1,2,3}D_WEIGHT_PER_CHANNEL
// (axis 0, which is the weight's input-channel axis here, as the reference and TensorRT have it).
// forward(input, output_size): input [N, C_in, *] or [C_in, *]; output_size, when given, has D or
// D + 2 entries (the batch and channel entries are ignored) and sets output_padding as torch's
// _ConvTransposeNd._output_padding does (dilation included).
// Errors: c10::ValueError for a padding_mode other than zeros (as the reference) and for an
// output_size of the wrong length or out of reach of the strides, both before any quantizer sees
// the input; torch's errors for bad shapes. clone() is a c10::NotImplementedError.
#ifndef QCAL_QUANT_MODULES_QUANT_CONV_TRANSPOSE_H_
#define QCAL_QUANT_MODULES_QUANT_CONV_TRANSPOSE_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/conv.h>

#include <cstddef>
#include <memory>
#include <ostream>

#include "quant/modules/quant_mixin.h"
#include "quant/quant_descriptor.h"

namespace qcal::quant {
namespace internal {

// What QuantConvTranspose1d/2d/3d share; FloatImpl is torch::nn::ConvTranspose{D}dImpl.
template <size_t D, typename FloatImpl>
class QuantConvTransposeNdImpl : public FloatImpl, public QuantMixin {
 public:
  using Options = torch::nn::ConvTransposeOptions<D>;

  QuantConvTransposeNdImpl(int64_t in_channels, int64_t out_channels,
                           torch::ExpandingArray<D> kernel_size, QuantMixinOptions quant = {})
      : QuantConvTransposeNdImpl(Options(in_channels, out_channels, kernel_size),
                                 std::move(quant)) {}
  explicit QuantConvTransposeNdImpl(Options options, QuantMixinOptions quant = {});

  // The float twin's FORWARD_HAS_DEFAULT_ARGS carries over: AnyModule and Sequential may omit
  // output_size.
  at::Tensor forward(const at::Tensor& input,
                     const c10::optional<at::IntArrayRef>& output_size = c10::nullopt);

  static QuantDescriptor default_quant_desc_input() { return default_input().get(); }
  static QuantDescriptor default_quant_desc_weight() { return default_weight().get(); }
  static void set_default_quant_desc_input(const QuantDescriptor& desc) {
    default_input().set(desc);
  }
  static void set_default_quant_desc_weight(const QuantDescriptor& desc) {
    default_weight().set(desc);
  }

  // "qcal::quant::QuantConvTranspose2d(64, 32, kernel_size=[2, 2], stride=[2, 2])".
  void pretty_print(std::ostream& stream) const override;
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;

 private:
  static DefaultQuantDesc& default_input();
  static DefaultQuantDesc& default_weight();
};

extern template class QuantConvTransposeNdImpl<1, torch::nn::ConvTranspose1dImpl>;
extern template class QuantConvTransposeNdImpl<2, torch::nn::ConvTranspose2dImpl>;
extern template class QuantConvTransposeNdImpl<3, torch::nn::ConvTranspose3dImpl>;

}  // namespace internal

// Aliases, as in quant_conv.h.
using QuantConvTranspose1dImpl =
    internal::QuantConvTransposeNdImpl<1, torch::nn::ConvTranspose1dImpl>;
using QuantConvTranspose2dImpl =
    internal::QuantConvTransposeNdImpl<2, torch::nn::ConvTranspose2dImpl>;
using QuantConvTranspose3dImpl =
    internal::QuantConvTransposeNdImpl<3, torch::nn::ConvTranspose3dImpl>;
TORCH_MODULE(QuantConvTranspose1d);
TORCH_MODULE(QuantConvTranspose2d);
TORCH_MODULE(QuantConvTranspose3d);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_MODULES_QUANT_CONV_TRANSPOSE_H_
