// Quantized pooling: pytorch-quantization's QuantMaxPool1d/2d/3d, QuantAvgPool1d/2d/3d and
// QuantAdaptiveAvgPool1d/2d/3d (nn/modules/quant_pooling.py), drop-ins for their torch::nn
// twins that quantize the input before pooling.
//
//   qcal::quant::QuantMaxPool2d pool(torch::nn::MaxPool2dOptions(2));   // or QuantMaxPool2d(2)
//   at::Tensor y = pool(x);                    // max_pool2d(input_quantizer(x), ...)
//   qcal::quant::QuantAdaptiveAvgPool2d gap(torch::nn::AdaptiveAvgPool2dOptions({1, 1}));
//
// Each class is its torch::nn twin (same options; LibTorch's forward runs on the quantized
// input) plus "_input_quantizer" (QuantInputMixin, quant_mixin.h); there is no weight quantizer.
// Class default, as the reference's: QUANT_DESC_8BIT_PER_TENSOR. Input shapes, dtypes and errors
// are the twin's and the quantizer's; QuantMaxPool also has forward_with_indices. clone() is a
// c10::NotImplementedError.
#ifndef QCAL_QUANT_MODULES_QUANT_POOLING_H_
#define QCAL_QUANT_MODULES_QUANT_POOLING_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/pooling.h>

#include <memory>
#include <ostream>
#include <tuple>
#include <type_traits>

#include "quant/modules/quant_mixin.h"
#include "quant/quant_descriptor.h"

namespace qcal::quant {
namespace internal {

// What the nine pooling classes share. FloatImpl is the torch::nn pooling module; Size is what its
// options are built from (the kernel size, or the output size of adaptive pooling).
template <typename FloatImpl, typename Size>
class QuantPoolImpl : public FloatImpl, public QuantInputMixin {
 public:
  using Options = std::remove_cvref_t<decltype(std::declval<FloatImpl&>().options)>;

  QuantPoolImpl(Size size, QuantInputOptions quant = {})  // NOLINT: implicit, as the twin's
      : QuantPoolImpl(Options(size), std::move(quant)) {}
  explicit QuantPoolImpl(const Options& options, QuantInputOptions quant = {});

  at::Tensor forward(const at::Tensor& input) {
    return FloatImpl::forward(input_quantizer()(input));
  }
  std::tuple<at::Tensor, at::Tensor> forward_with_indices(const at::Tensor& input) requires
      requires(FloatImpl& pool, const at::Tensor& x) {
    pool.forward_with_indices(x);
  }
  { return FloatImpl::forward_with_indices(input_quantizer()(input)); }

  static QuantDescriptor default_quant_desc_input() { return default_input().get(); }
  static void set_default_quant_desc_input(const QuantDescriptor& desc) {
    default_input().set(desc);
  }

  // "qcal::quant::QuantMaxPool2d(kernel_size=[2, 2], stride=[2, 2], ...)".
  void pretty_print(std::ostream& stream) const override;
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;

 private:
  static DefaultQuantDesc& default_input();
};

template <size_t D>
using AdaptiveSize = torch::ExpandingArrayWithOptionalElem<D>;

extern template class QuantPoolImpl<torch::nn::MaxPool1dImpl, torch::ExpandingArray<1>>;
extern template class QuantPoolImpl<torch::nn::MaxPool2dImpl, torch::ExpandingArray<2>>;
extern template class QuantPoolImpl<torch::nn::MaxPool3dImpl, torch::ExpandingArray<3>>;
extern template class QuantPoolImpl<torch::nn::AvgPool1dImpl, torch::ExpandingArray<1>>;
extern template class QuantPoolImpl<torch::nn::AvgPool2dImpl, torch::ExpandingArray<2>>;
extern template class QuantPoolImpl<torch::nn::AvgPool3dImpl, torch::ExpandingArray<3>>;
extern template class QuantPoolImpl<torch::nn::AdaptiveAvgPool1dImpl, torch::ExpandingArray<1>>;
extern template class QuantPoolImpl<torch::nn::AdaptiveAvgPool2dImpl, AdaptiveSize<2>>;
extern template class QuantPoolImpl<torch::nn::AdaptiveAvgPool3dImpl, AdaptiveSize<3>>;

}  // namespace internal

// Aliases, as in quant_conv.h.
using QuantMaxPool1dImpl =
    internal::QuantPoolImpl<torch::nn::MaxPool1dImpl, torch::ExpandingArray<1>>;
using QuantMaxPool2dImpl =
    internal::QuantPoolImpl<torch::nn::MaxPool2dImpl, torch::ExpandingArray<2>>;
using QuantMaxPool3dImpl =
    internal::QuantPoolImpl<torch::nn::MaxPool3dImpl, torch::ExpandingArray<3>>;
using QuantAvgPool1dImpl =
    internal::QuantPoolImpl<torch::nn::AvgPool1dImpl, torch::ExpandingArray<1>>;
using QuantAvgPool2dImpl =
    internal::QuantPoolImpl<torch::nn::AvgPool2dImpl, torch::ExpandingArray<2>>;
using QuantAvgPool3dImpl =
    internal::QuantPoolImpl<torch::nn::AvgPool3dImpl, torch::ExpandingArray<3>>;
using QuantAdaptiveAvgPool1dImpl =
    internal::QuantPoolImpl<torch::nn::AdaptiveAvgPool1dImpl, torch::ExpandingArray<1>>;
using QuantAdaptiveAvgPool2dImpl =
    internal::QuantPoolImpl<torch::nn::AdaptiveAvgPool2dImpl, internal::AdaptiveSize<2>>;
using QuantAdaptiveAvgPool3dImpl =
    internal::QuantPoolImpl<torch::nn::AdaptiveAvgPool3dImpl, internal::AdaptiveSize<3>>;
TORCH_MODULE(QuantMaxPool1d);
TORCH_MODULE(QuantMaxPool2d);
TORCH_MODULE(QuantMaxPool3d);
TORCH_MODULE(QuantAvgPool1d);
TORCH_MODULE(QuantAvgPool2d);
TORCH_MODULE(QuantAvgPool3d);
TORCH_MODULE(QuantAdaptiveAvgPool1d);
TORCH_MODULE(QuantAdaptiveAvgPool2d);
TORCH_MODULE(QuantAdaptiveAvgPool3d);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_MODULES_QUANT_POOLING_H_
