// How torch.onnx.export (torch 1.13) names what the QDQ export looks for, and how
// pytorch-quantization names its quantizers.
//
// torch.onnx gives every node the scope of the modules it ran in, one path component per module
// call, then the op: "/layer1/layer1.0/conv1/Conv". A component is the module's qualified name cut
// back to its last non-numeric atom (torch.onnx.utils._unqualified_variable_name), so
// "layer1.0" stands for module layer1.0 and "conv1" under it for layer1.0.conv1; containers that
// are never called (ModuleList) leave no component of their own ("/blocks.0/Gemm"). A module
// called again gets "_N" appended to its component ("/fc_1/Gemm" is the second call of fc).
//
//   ModuleOfScope("/layer1/layer1.0/conv1/Conv")               -> "layer1.0.conv1"
//   ModuleOfScope("/layer1/layer1.1/downsample/downsample.0/Conv") -> "layer1.1.downsample.0"
//   ModuleOfScope("/Relu")                                      -> "" (the root module)
//   ModuleOfScope("Conv_3")                                     -> nullopt (no scope)
//   ModuleOfWeight("layer1.0.conv1.weight")                     -> "layer1.0.conv1"
//   ParseQuantizerName("fc._input_quantizer")                   -> {"fc", kInput}
//   ParseQuantizerName("layer1.0.residual_quantizer")           -> {"layer1.0", kResidual}
#ifndef QCAL_SERVER_ONNX_TORCH_ONNX_NAMES_H_
#define QCAL_SERVER_ONNX_TORCH_ONNX_NAMES_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "onnx/onnx_pb.h"

namespace qcal::server {

enum class QuantizerKind {
  kInput,   // "<module>._input_quantizer": the node's data input (input 0)
  kWeight,  // "<module>._weight_quantizer": the node's weight (input 1)
  // "<block>.residual_quantizer": the shortcut input of the block's residual Add. The name is
  // pytorch-quantization's (examples/torchvision/models/classification/resnet.py: a
  // TensorQuantizer the BasicBlock/Bottleneck owns, applied to `identity`); it has no leading
  // underscore, unlike the Quant* modules' own quantizers.
  kResidual,
};

struct QuantizerName {
  std::string module;  // "" for a quantizer of the root module itself
  QuantizerKind kind;
  // kResidual: which residual add of the block, in graph order. qcal.torch names a block's
  // residual quantizers "residual_quantizer", "residual_quantizer_1", ... (README, "Residual and
  // pooling quantizers").
  int index = 0;
};

// nullopt for names that end in none of "_input_quantizer", "_weight_quantizer",
// "residual_quantizer", "residual_quantizer_<N>" (each preceded by "." or nothing).
std::optional<QuantizerName> ParseQuantizerName(absl::string_view name);

// "<module>._input_quantizer" / "<module>._weight_quantizer" / "<module>.residual_quantizer"
// ("_input_quantizer" etc. for the root).
// "residual_quantizer_<index>" for a residual quantizer with index > 0.
std::string QuantizerNameOf(absl::string_view module, QuantizerKind kind, int index = 0);

// The module a torch.onnx node name's scope names; nullopt when the name has no scope (does not
// start with '/'). With strip_call_suffix, "_N" endings of components are dropped first (the
// module of a repeated call; a module really named "fc_1" needs strip_call_suffix = false).
std::optional<std::string> ModuleOfScope(absl::string_view node_name, bool strip_call_suffix);

// "<module>.weight" -> "<module>"; nullopt for other names ("onnx::Conv_35").
std::optional<std::string> ModuleOfWeight(absl::string_view initializer_name);

// Modules the node may belong to, most likely first: its literal scope, then the scope without
// repeated-call suffixes; for a Conv/ConvTranspose/Gemm/MatMul without scope, the module of its
// weight input's name (other nodes without scope: none).
std::vector<std::string> CandidateModules(const onnx::NodeProto& node);

// A default-domain Conv, ConvTranspose, Gemm or MatMul with a data input and a weight: the ops
// whose inputs pytorch-quantization's Quant* modules quantize.
bool IsQuantizableNode(const onnx::NodeProto& node);

// A default-domain MaxPool, AveragePool or GlobalAveragePool: what torch 1.13's torch.onnx emits
// for MaxPool{1,2,3}d, AvgPool{1,2,3}d (AveragePool, read through a Pad node it adds in front)
// and AdaptiveAvgPool{1,2,3}d (GlobalAveragePool for output size 1, AveragePool otherwise).
// pytorch-quantization's QuantMaxPool/QuantAvgPool/QuantAdaptiveAvgPool quantize their input 0.
bool IsPoolingNode(const onnx::NodeProto& node);

// A default-domain Add with two inputs: a candidate residual (skip-connection) add.
bool IsTwoInputAdd(const onnx::NodeProto& node);

// Whether a quantizer of `kind` can bind to `node`: kInput to a quantizable or pooling node,
// kWeight to a quantizable node, kResidual to a two-input Add.
bool KindBindsTo(QuantizerKind kind, const onnx::NodeProto& node);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_TORCH_ONNX_NAMES_H_
