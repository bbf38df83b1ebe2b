// Quantized fully connected layer: pytorch-quantization's QuantLinear
// (nn/modules/quant_linear.py), a drop-in for torch::nn::Linear.
//
//   qcal::quant::QuantLinear fc(torch::nn::LinearOptions(1568, 128));
//   at::Tensor y = fc(x);          // linear(input_quantizer(x), weight_quantizer(weight), bias)
//
// torch::nn::Linear (same options, "weight" [out, in] and "bias", same initialisation) plus the
// quantizers of quant_mixin.h. Class defaults, as the reference's: input
// QUANT_DESC_8BIT_PER_TENSOR, weight QUANT_DESC_8BIT_LINEAR_WEIGHT_PER_ROW (8-bit, axis 0: one
// amax per output feature, [out, 1]). forward(input): [*, in] floating, output [*, out]; with
// both quantizers disabled it equals torch::nn::Linear's bit for bit.
// Errors: torch's for mismatched shapes; the quantizers'. clone() is a c10::NotImplementedError.
#ifndef QCAL_QUANT_MODULES_QUANT_LINEAR_H_
#define QCAL_QUANT_MODULES_QUANT_LINEAR_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <ostream>

#include "quant/modules/quant_mixin.h"
#include "quant/quant_descriptor.h"

namespace qcal::quant {

class QuantLinearImpl : public torch::nn::LinearImpl, public QuantMixin {
 public:
  QuantLinearImpl(int64_t in_features, int64_t out_features, QuantMixinOptions quant = {})
      : QuantLinearImpl(torch::nn::LinearOptions(in_features, out_features), std::move(quant)) {}
  explicit QuantLinearImpl(const torch::nn::LinearOptions& options, QuantMixinOptions quant = {});

  at::Tensor forward(const at::Tensor& input);

  static QuantDescriptor default_quant_desc_input();
  static QuantDescriptor default_quant_desc_weight();
  static void set_default_quant_desc_input(const QuantDescriptor& desc);
  static void set_default_quant_desc_weight(const QuantDescriptor& desc);

  // "qcal::quant::QuantLinear(in_features=1568, out_features=128, bias=true)".
  void pretty_print(std::ostream& stream) const override;
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;
};
TORCH_MODULE(QuantLinear);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_MODULES_QUANT_LINEAR_H_
