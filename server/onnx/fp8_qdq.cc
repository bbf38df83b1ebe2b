#include "server/onnx/fp8_qdq.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "kernels/quant_bound.h"
#include "server/onnx/graph_order.h"
#include "server/onnx/onnx_model.h"
#include "server/onnx/opset_upgrade.h"

namespace qcal::server {
namespace {

constexpr char kTrtDomain[] = "trt";

bool IsQdq(const onnx::NodeProto& node) {
  return (node.domain().empty() || node.domain() == "ai.onnx") &&
         (node.op_type() == "QuantizeLinear" || node.op_type() == "DequantizeLinear");
}

// Indices of the Q/DQ nodes whose zero point is an FP8 initializer.
std::vector<int> Fp8QdqNodes(const onnx::GraphProto& graph) {
  std::set<std::string> fp8_initializers;
  for (const onnx::TensorProto& t : graph.initializer()) {
    if (t.data_type() == kOnnxFloat8E4M3FN) fp8_initializers.insert(t.name());
  }
  std::vector<int> nodes;
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    if (IsQdq(node) && node.input_size() == 3 && fp8_initializers.contains(node.input(2))) {
      nodes.push_back(i);
    }
  }
  return nodes;
}

// One float32 scale (0-d), the largest of `scale`'s values.
void MakeScalar(onnx::TensorProto* scale) {
  float largest = 0;
  for (float s : scale->float_data()) largest = std::max(largest, s);
  scale->clear_dims();
  scale->clear_float_data();
  scale->clear_raw_data();
  scale->add_float_data(largest);
}

absl::Status ToTensorRtOps(onnx::ModelProto* model, const std::vector<int>& fp8_nodes,
                           std::vector<std::string>* warnings) {
  onnx::GraphProto* graph = model->mutable_graph();
  std::map<std::string, onnx::TensorProto*> initializers;
  for (onnx::TensorProto& t : *graph->mutable_initializer()) initializers[t.name()] = &t;
  std::set<std::string> dropped_zero_points;
  std::set<std::string> scalar_scales;
  for (int i : fp8_nodes) {
    onnx::NodeProto* node = graph->mutable_node(i);
    const auto scale = initializers.find(node->input(1));
    if (scale == initializers.end() || scale->second->data_type() != onnx::TensorProto::FLOAT ||
        scale->second->has_raw_data()) {
      return absl::InvalidArgumentError(absl::StrCat(
          node->op_type(), " node '", node->name(), "': scale '", node->input(1),
          "' is not a float32 initializer in float_data; cannot make a TRT_FP8 scale of it"));
    }
    if (scale->second->dims_size() > 0 && scalar_scales.insert(scale->first).second) {
      const auto [lo, hi] = std::minmax_element(scale->second->float_data().begin(),
                                                scale->second->float_data().end());
      warnings->push_back(absl::StrCat(
          "tensor '", node->input(0),
          "': TensorRT's TRT_FP8 ops take one scale per pair (as "
          "ModelOpt's export_fp8 writes them), so its ",
          scale->second->float_data_size(), " per-channel FP8 scales (", *lo, " to ", *hi,
          ") become the largest, ", *hi, "; use --fp8-ops onnx to keep them per channel"));
      MakeScalar(scale->second);
    }
    dropped_zero_points.insert(node->input(2));
    node->mutable_input()->RemoveLast();
    node->clear_attribute();
    node->set_domain(kTrtDomain);
    node->set_op_type(node->op_type() == "QuantizeLinear" ? "TRT_FP8QuantizeLinear"
                                                          : "TRT_FP8DequantizeLinear");
  }
  // Drop the zero points that nothing reads any more.
  for (const onnx::NodeProto& node : graph->node()) {
    for (const std::string& input : node.input()) dropped_zero_points.erase(input);
  }
  auto* inits = graph->mutable_initializer();
  inits->erase(std::remove_if(inits->begin(), inits->end(),
                              [&](const onnx::TensorProto& t) {
                                return dropped_zero_points.contains(t.name());
                              }),
               inits->end());
  bool has_trt = false;
  for (const onnx::OperatorSetIdProto& opset : model->opset_import()) {
    has_trt = has_trt || opset.domain() == kTrtDomain;
  }
  if (!has_trt) {
    onnx::OperatorSetIdProto* opset = model->add_opset_import();
    opset->set_domain(kTrtDomain);
    opset->set_version(1);
  }
  if (absl::Status s = CheckOnnxModel(*model); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the QDQ model with TRT_FP8 ops fails onnx::checker: ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<float> QdqBound(absl::string_view quantizer, kernels::QuantFormat format,
                               int num_bits, bool is_unsigned) {
  if (format != kernels::QuantFormat::kFp8E4M3) return kernels::QuantBound(num_bits, is_unsigned);
  if (num_bits != 8 || is_unsigned) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantizer '", quantizer, "' is FP8 E4M3 with num_bits ", num_bits,
                     is_unsigned ? ", unsigned" : "", "; FP8 E4M3 is 8 bits and signed"));
  }
  return kernels::kFp8E4M3Max;
}

int32_t ZeroPointDataType(kernels::QuantFormat format, bool is_unsigned) {
  if (format == kernels::QuantFormat::kFp8E4M3) return kOnnxFloat8E4M3FN;
  return is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8;
}

absl::Status FinishFp8Qdq(Fp8Ops ops, onnx::ModelProto* model, std::vector<std::string>* warnings) {
  const std::vector<int> fp8_nodes = Fp8QdqNodes(model->graph());
  if (fp8_nodes.empty()) return absl::OkStatus();
  if (ops == Fp8Ops::kTensorRT) return ToTensorRtOps(model, fp8_nodes, warnings);
  if (absl::Status s = RaiseOpset(model, kFp8Opset); !s.ok()) return s;
  if (absl::Status s = CheckGraphOrder(model->graph()); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the opset-19 FP8 QDQ model fails the structure check: ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Fp8Ops> ParseFp8Ops(absl::string_view name) {
  if (name.empty() || name == "onnx") return Fp8Ops::kOnnx;
  if (name == "trt") return Fp8Ops::kTensorRT;
  return absl::InvalidArgumentError(
      absl::StrCat("FP8 ops '", name,
                   "': expected \"onnx\" (QuantizeLinear-19) or \"trt\" "
                   "(TensorRT's TRT_FP8QuantizeLinear)"));
}

}  // namespace qcal::server
