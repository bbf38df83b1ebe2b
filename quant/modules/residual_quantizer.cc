#include "quant/modules/residual_quantizer.h"

#include <utility>

#include "quant/modules/quant_conv.h"

namespace qcal::quant {

TensorQuantizer register_residual_quantizer(torch::nn::Module& block,
                                            std::optional<QuantDescriptor> desc) {
  return block.register_module(
      kResidualQuantizerName,
      TensorQuantizer(desc ? std::move(*desc) : QuantConv2dImpl::default_quant_desc_input()));
}

}  // namespace qcal::quant
