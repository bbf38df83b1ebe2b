// Which ONNX nodes and tensors each pytorch-quantization quantizer belongs to, found the way
// torch.onnx (torch 1.13) names things (details in torch_onnx_names.h):
//   - node scope: "/layer1/layer1.0/conv1/Conv" belongs to module "layer1.0.conv1";
//     "/classifier/classifier.1/Gemm" to "classifier.1"; "/fc_1/Gemm" (second call of fc) to
//     "fc" unless a module "fc_1" has quantizers;
//   - an eval-mode export folds BatchNorm into the conv and renames its weight "onnx::Conv_NN":
//     the node scope still names the module, so it binds all the same;
//   - a node without scope (another exporter, "Conv_3") binds by its weight initializer's name:
//     "conv1.weight" belongs to module "conv1".
// "<module>._input_quantizer" binds to the data input (input 0) of that module's Conv,
// ConvTranspose, Gemm or MatMul node(s), and of its MaxPool, AveragePool or GlobalAveragePool
// node(s) (pytorch-quantization's QuantMaxPool/QuantAvgPool/QuantAdaptiveAvgPool);
// "<module>._weight_quantizer" to the weight (input 1) of the former;
// "<block>.residual_quantizer" to the shortcut input of the block's residual Add(s) (the Add's
// scope names the block: torchvision's "/layer1/layer1.0/Add"; which input is the shortcut:
// residual_add.h); "<block>.residual_quantizer_N" to the block's (N+1)-th residual Add in graph
// order (qcal.torch's numbering; "/layer1/layer1.0/Add_1" when both adds are residual). Only nodes
// of exactly that module count, not those of its children.
//
// Explicit quantizer -> tensor pairs override the matching: the quantizer binds to the
// quantizable nodes reading that tensor in its slot (input 0 for an input quantizer, input 1 for
// a weight quantizer), and those node inputs are taken away from any automatic binding.
//
//   auto bindings = BindQuantizers(model, {"conv1._input_quantizer"}, {});
//   bindings->at("conv1._input_quantizer").tensor  // "input"
#ifndef QCAL_SERVER_ONNX_QUANTIZER_BINDING_H_
#define QCAL_SERVER_ONNX_QUANTIZER_BINDING_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"

namespace qcal::server {

struct QuantizerBinding {
  std::string quantizer;
  // Indices into graph.node of the quantizable nodes this quantizer feeds, ascending. More than
  // one when the module ran more than once.
  std::vector<int> nodes;
  // The input slot of each of `nodes` (same length): 0 for input quantizers, 1 for weight
  // quantizers, the shortcut's slot (0 or 1) for residual quantizers.
  std::vector<int> slots;
  // The tensor it quantizes: the nodes' data input (input quantizers) or weight (weight
  // quantizers); that of nodes.front() when the calls read different tensors.
  std::string tensor;
  // Every distinct tensor of `nodes`, in node order; tensors.front() == tensor.
  std::vector<std::string> tensors;
};

// Binds every name of `quantizers` that can be matched; names that match nothing, or that are of
// no QuantizerKind, are left out. An explicit pair of a residual quantizer binds the two-input
// Adds reading that tensor in either slot.
// Errors: INVALID_ARGUMENT when an explicit pair names a quantizer not in `quantizers` or of
// neither kind, a tensor the model lacks or that no Conv/ConvTranspose/Gemm/MatMul reads in the
// quantizer's slot, or a node input another explicit pair already claims.
absl::StatusOr<std::map<std::string, QuantizerBinding>> BindQuantizers(
    const onnx::ModelProto& model, const std::vector<std::string>& quantizers,
    const std::map<std::string, std::string>& explicit_pairs);

// For the TensorRT calibration cache, keyed by ONNX tensor names: activation tensor -> the input
// quantizers (input and residual) that quantize it (several when one tensor feeds several
// modules; the cache takes the largest amax). Weight quantizers are left out.
std::map<std::string, std::vector<std::string>> ActivationTensorQuantizers(
    const std::map<std::string, QuantizerBinding>& bindings);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_QUANTIZER_BINDING_H_
