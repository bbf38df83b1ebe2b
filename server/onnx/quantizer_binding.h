// Which ONNX node and tensor each pytorch-quantization quantizer belongs to, found the way
// torch.onnx names things:
//   - node scope: "/layer1/layer1.0/conv1/Conv" belongs to module "layer1.0.conv1";
//   - weight initializer: "conv1.weight" belongs to module "conv1";
//   - an eval-mode export folds BatchNorm into the conv and renames its weight "onnx::Conv_NN":
//     the node scope still names the module.
// "<module>._input_quantizer" binds to the data input (input 0) of that module's Conv,
// ConvTranspose, Gemm or MatMul node(s); "<module>._weight_quantizer" to their weight input.
// Explicit quantizer -> tensor pairs override the matching.
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
  // Indices into graph.node of the quantizable nodes this quantizer feeds.
  std::vector<int> nodes;
  // The tensor it quantizes: the nodes' data input (input quantizers) or weight (weight
  // quantizers).
  std::string tensor;
};

// Binds every name of `quantizers` that can be matched; names that match nothing are left out.
// Errors: INVALID_ARGUMENT when an explicit pair names a quantizer or tensor the model lacks.
absl::StatusOr<std::map<std::string, QuantizerBinding>> BindQuantizers(
    const onnx::ModelProto& model, const std::vector<std::string>& quantizers,
    const std::map<std::string, std::string>& explicit_pairs);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_QUANTIZER_BINDING_H_
