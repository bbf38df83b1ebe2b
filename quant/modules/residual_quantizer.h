// The shortcut quantizer of a residual block, as pytorch-quantization's ResNet example
// (examples/torchvision/models/classification/resnet.py, "Further optimization" of its ResNet50
// walkthrough) builds it: a TensorQuantizer with QuantConv2d's default input descriptor, owned by
// the block as "residual_quantizer" and applied to the identity branch only, so that TensorRT
// fuses the add into the conv's epilogue and the block runs in INT8 (TensorRT developer guide,
// "Q/DQ layer-placement recommendations": quantize the residual input of a skip connection).
//
//   struct BlockImpl : torch::nn::Module {
//     BlockImpl() : residual_quantizer(qcal::quant::register_residual_quantizer(*this)) {...}
//     at::Tensor forward(const at::Tensor& x) {
//       at::Tensor out = bn2(conv2(relu(bn1(conv1(x)))));
//       out += residual_quantizer(downsample ? downsample(x) : x);   // not conv-side input
//       return relu(out);
//     }
//     qcal::quant::TensorQuantizer residual_quantizer;
//     ...
//   };
//
// Nothing else is needed: a registered TensorQuantizer is a submodule, so named_quantizers,
// enable_calibration, load_calib_amax (model_quantizers.h) and use_remote_calibrators
// (remote_model.h) visit it as "<block path>.residual_quantizer" ("layer1.0.residual_quantizer"),
// the name qcal.torch.calibrate records and the ONNX export binds to the Add's shortcut input.
#ifndef QCAL_QUANT_MODULES_RESIDUAL_QUANTIZER_H_
#define QCAL_QUANT_MODULES_RESIDUAL_QUANTIZER_H_

#include <torch/nn/module.h>

#include <optional>

#include "quant/quant_descriptor.h"
#include "quant/tensor_quantizer.h"

namespace qcal::quant {

// The submodule name pytorch-quantization's resnet.py gives the shortcut quantizer.
inline constexpr char kResidualQuantizerName[] = "residual_quantizer";

// Registers a new TensorQuantizer in `block` as "residual_quantizer" and returns it. desc: its
// descriptor; by default QuantConv2d's class default input descriptor at the time of the call
// (QuantConv2dImpl::default_quant_desc_input(), as resnet.py). Errors: register_module's
// (c10::Error when the block already has a submodule of that name).
TensorQuantizer register_residual_quantizer(torch::nn::Module& block,
                                            std::optional<QuantDescriptor> desc = std::nullopt);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_MODULES_RESIDUAL_QUANTIZER_H_
