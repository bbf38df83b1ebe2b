#include "server/onnx/qdq_export.h"

#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/quant_bound.h"
#include "server/onnx/graph_names.h"
#include "server/onnx/onnx_model.h"
#include "server/onnx/quantizer_binding.h"
#include "server/onnx/torch_onnx_names.h"
#include "server/onnx/weight_amax.h"
#include "server/tables/qdq_scale.h"

namespace qcal::server {
namespace {

// One QuantizeLinear -> DequantizeLinear pair to insert.
struct QdqPair {
  std::string base;  // name stem of the new nodes and initializers: the quantizer's name
  std::string tensor;
  std::vector<float> scale;  // one value (per-tensor) or one per index of `axis`
  std::optional<int> axis;
  bool is_unsigned = false;
  kernels::QuantFormat format = kernels::QuantFormat::kInt;
  std::vector<std::pair<int, int>> consumers;  // (node index, input slot), ascending
};

// opset-13 QuantizeLinear stores int8/uint8 only; other widths would clamp to the wrong range.
absl::Status CheckNumBits(absl::string_view quantizer, int num_bits) {
  if (num_bits == 8) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("quantizer '", quantizer, "' has num_bits ", num_bits,
                   "; the QDQ export (opset-13 QuantizeLinear, int8/uint8) supports 8 only"));
}

// A weight quantizer's table entry must describe this weight (its amax is not used: the export
// recomputes it from the initializer).
absl::Status CheckWeightEntry(const QuantizerAmax& entry, const onnx::TensorProto& weight) {
  if (entry.amax.empty()) return absl::OkStatus();
  std::vector<std::string> ignored;
  const AmaxSubject subject{entry.name, weight.name(), entry.axis};
  if (absl::StatusOr<std::vector<float>> s = ScalesFromAmax(entry.amax, 1.0f, subject, &ignored);
      !s.ok()) {
    return s.status();
  }
  if (!entry.axis) {
    if (entry.amax.size() == 1) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("quantizer '", entry.name, "' has ", entry.amax.size(),
                     " amax values but no axis; a per-tensor amax has one value"));
  }
  const int axis = *entry.axis;
  if (axis < 0 || axis >= weight.dims_size()) {
    return absl::InvalidArgumentError(absl::StrCat("quantizer '", entry.name, "': axis ", axis,
                                                   " is out of range for weight '", weight.name(),
                                                   "' of rank ", weight.dims_size()));
  }
  if (static_cast<int64_t>(entry.amax.size()) != weight.dims(axis)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantizer '", entry.name, "' has ", entry.amax.size(), " per-channel amax values on axis ",
        axis, " but weight '", weight.name(), "' has ", weight.dims(axis), " channels there"));
  }
  return absl::OkStatus();
}

onnx::TensorProto ScaleInitializer(const std::string& name, const QdqPair& pair) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  if (pair.axis) t.add_dims(static_cast<int64_t>(pair.scale.size()));
  for (float s : pair.scale) t.add_float_data(s);
  return t;
}

onnx::TensorProto ZeroPointInitializer(const std::string& name, const QdqPair& pair) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(ZeroPointDataType(pair.format, pair.is_unsigned));
  if (pair.axis) t.add_dims(static_cast<int64_t>(pair.scale.size()));
  t.set_raw_data(std::string(pair.scale.size(), '\0'));
  return t;
}

onnx::NodeProto QdqNode(const std::string& op, const std::string& name, const std::string& input,
                        const std::string& scale, const std::string& zero_point,
                        const std::string& output, std::optional<int> axis) {
  onnx::NodeProto node;
  node.set_op_type(op);
  node.set_name(name);
  node.add_input(input);
  node.add_input(scale);
  node.add_input(zero_point);
  node.add_output(output);
  if (axis) {
    onnx::AttributeProto* attr = node.add_attribute();
    attr->set_name("axis");
    attr->set_type(onnx::AttributeProto::INT);
    attr->set_i(*axis);
  }
  return node;
}

// Plans the data-input pairs: one per (calibrated input quantizer, tensor). Fills
// *weight_quantizer_of with each quantized node and the weight quantizer that goes with it.
absl::Status PlanInputPairs(const onnx::GraphProto& graph, const AmaxTable& table,
                            const std::map<std::string, QuantizerBinding>& bindings,
                            std::vector<QdqPair>* pairs,
                            std::map<int, std::string>* weight_quantizer_of,
                            std::vector<std::string>* warnings) {
  std::map<int, std::string> bound_weight_quantizer;
  for (const auto& [quantizer, binding] : bindings) {
    if (ParseQuantizerName(quantizer)->kind != QuantizerKind::kWeight) continue;
    for (int i : binding.nodes) bound_weight_quantizer[i] = quantizer;
  }
  for (const auto& [quantizer, entry] : table.quantizers) {
    const std::optional<QuantizerName> parsed = ParseQuantizerName(quantizer);
    if (!parsed || parsed->kind != QuantizerKind::kInput) continue;
    const auto bound = bindings.find(quantizer);
    if (bound == bindings.end()) {
      if (!entry.amax.empty()) {
        warnings->push_back(absl::StrCat("quantizer '", quantizer,
                                         "' matches no Conv, ConvTranspose, Gemm or MatMul node "
                                         "of the ONNX model; nothing exported for it"));
      }
      continue;
    }
    if (entry.amax.empty()) {
      warnings->push_back(absl::StrCat("quantizer '", quantizer,
                                       "' has no amax (not calibrated); node(s) it binds stay "
                                       "float"));
      continue;
    }
    if (absl::Status s = CheckNumBits(quantizer, entry.num_bits); !s.ok()) return s;
    if (entry.amax.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "quantizer '", quantizer, "' has ", entry.amax.size(),
          " amax values; the data input of a node is quantized per tensor (one amax)"));
    }
    std::map<std::string, size_t> pair_of_tensor;
    for (int i : bound->second.nodes) {
      const std::string& tensor = graph.node(i).input(0);
      auto [it, inserted] = pair_of_tensor.emplace(tensor, pairs->size());
      if (inserted) {
        const absl::StatusOr<float> bound =
            QdqBound(quantizer, entry.format, entry.num_bits, entry.is_unsigned);
        if (!bound.ok()) return bound.status();
        absl::StatusOr<std::vector<float>> scale =
            ScalesFromAmax(entry.amax, *bound, {quantizer, tensor, std::nullopt}, warnings);
        if (!scale.ok()) return scale.status();
        pairs->push_back({.base = quantizer,
                          .tensor = tensor,
                          .scale = *std::move(scale),
                          .axis = std::nullopt,
                          .is_unsigned = entry.is_unsigned,
                          .format = entry.format,
                          .consumers = {}});
      }
      (*pairs)[it->second].consumers.emplace_back(i, 0);
      const auto weight = bound_weight_quantizer.find(i);
      (*weight_quantizer_of)[i] = weight != bound_weight_quantizer.end()
                                      ? weight->second
                                      : QuantizerNameOf(parsed->module, QuantizerKind::kWeight);
    }
  }
  return absl::OkStatus();
}

// The format of the pair feeding input 0 of node `node`.
kernels::QuantFormat InputFormatOf(const std::vector<QdqPair>& pairs, int node) {
  for (const QdqPair& pair : pairs) {
    for (const auto& consumer : pair.consumers) {
      if (consumer == std::pair{node, 0}) return pair.format;
    }
  }
  return kernels::QuantFormat::kInt;
}

// Plans the weight pairs of the quantized nodes: one per (weight, axis, signedness), amax from
// the initializer.
absl::Status PlanWeightPairs(const onnx::GraphProto& graph, const AmaxTable& table,
                             const QdqOptions& options,
                             const std::map<int, std::string>& weight_quantizer_of,
                             std::vector<QdqPair>* pairs, std::vector<std::string>* warnings) {
  std::map<std::string, int> initializer_index;
  for (int i = 0; i < graph.initializer_size(); ++i) {
    initializer_index.emplace(graph.initializer(i).name(), i);
  }
  std::map<std::tuple<std::string, int, bool, kernels::QuantFormat>, size_t> pair_of_weight;
  for (const auto& [i, quantizer] : weight_quantizer_of) {
    const onnx::NodeProto& node = graph.node(i);
    const std::string& name = node.input(1);
    const auto init = initializer_index.find(name);
    if (init == initializer_index.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          node.op_type(), " node '", node.name(), "': weight '", name,
          "' is not an initializer; the QDQ export takes weight amax from the initializer "
          "(export with do_constant_folding=True)"));
    }
    const onnx::TensorProto& weight = graph.initializer(init->second);
    absl::StatusOr<int> axis = WeightChannelAxis(node, weight.dims_size(), options.target);
    if (!axis.ok()) return axis.status();
    int num_bits = options.default_weight_num_bits;
    bool is_unsigned = options.default_weight_unsigned;
    // A weight without a table entry takes its node's input format: an FP8 node gets FP8 weights.
    kernels::QuantFormat format = InputFormatOf(*pairs, i);
    if (const auto entry = table.quantizers.find(quantizer); entry != table.quantizers.end()) {
      if (absl::Status s = CheckWeightEntry(entry->second, weight); !s.ok()) return s;
      num_bits = entry->second.num_bits;
      is_unsigned = entry->second.is_unsigned;
      format = entry->second.format;
    }
    if (absl::Status s = CheckNumBits(quantizer, num_bits); !s.ok()) return s;
    auto [it, inserted] =
        pair_of_weight.emplace(std::tuple{name, *axis, is_unsigned, format}, pairs->size());
    if (inserted) {
      absl::StatusOr<std::vector<float>> amax = PerChannelAbsMax(weight, *axis);
      if (!amax.ok()) return amax.status();
      const absl::StatusOr<float> bound = QdqBound(quantizer, format, num_bits, is_unsigned);
      if (!bound.ok()) return bound.status();
      absl::StatusOr<std::vector<float>> scale =
          ScalesFromAmax(*amax, *bound, {quantizer, name, *axis}, warnings);
      if (!scale.ok()) return scale.status();
      pairs->push_back({.base = quantizer,
                        .tensor = name,
                        .scale = *std::move(scale),
                        .axis = *axis,
                        .is_unsigned = is_unsigned,
                        .format = format,
                        .consumers = {}});
    }
    (*pairs)[it->second].consumers.emplace_back(i, 1);
  }
  return absl::OkStatus();
}

// Each pair goes right before its first consumer, which follows the tensor's producer in a
// sorted graph, so the order stays topological.
onnx::ModelProto InsertPairs(const onnx::ModelProto& model, const std::vector<QdqPair>& pairs) {
  onnx::ModelProto result = model;
  onnx::GraphProto* out = result.mutable_graph();
  GraphNames names(model.graph());
  std::vector<std::vector<onnx::NodeProto>> before(out->node_size());
  for (const QdqPair& pair : pairs) {
    const std::string scale = names.Unique(pair.base + "/scale");
    const std::string zero_point = names.Unique(pair.base + "/zero_point");
    const std::string q_name = names.Unique(pair.base + "/QuantizeLinear");
    const std::string q_out = names.Unique(pair.base + "/QuantizeLinear_output_0");
    const std::string dq_name = names.Unique(pair.base + "/DequantizeLinear");
    const std::string dq_out = names.Unique(pair.base + "/DequantizeLinear_output_0");
    *out->add_initializer() = ScaleInitializer(scale, pair);
    *out->add_initializer() = ZeroPointInitializer(zero_point, pair);
    const int first = std::min_element(pair.consumers.begin(), pair.consumers.end())->first;
    before[first].push_back(
        QdqNode("QuantizeLinear", q_name, pair.tensor, scale, zero_point, q_out, pair.axis));
    before[first].push_back(
        QdqNode("DequantizeLinear", dq_name, q_out, scale, zero_point, dq_out, pair.axis));
    for (const auto& [node, slot] : pair.consumers) {
      out->mutable_node(node)->set_input(slot, dq_out);
    }
  }
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  for (int i = 0; i < out->node_size(); ++i) {
    for (onnx::NodeProto& node : before[i]) *nodes.Add() = std::move(node);
    *nodes.Add() = std::move(*out->mutable_node(i));
  }
  out->mutable_node()->Swap(&nodes);
  return result;
}

}  // namespace

absl::StatusOr<QdqResult> ExportQdq(const onnx::ModelProto& model, const AmaxTable& table,
                                    const QdqOptions& options) {
  if (absl::Status s = CheckMinOpset(model); !s.ok()) return s;
  // Explicit pairs may name quantizers the table lacks (one that saw no data): they still claim
  // their node inputs, and export nothing of their own.
  std::vector<std::string> quantizers;
  for (const auto& [name, entry] : table.quantizers) quantizers.push_back(name);
  for (const auto& [name, tensor] : options.explicit_pairs) {
    if (!table.quantizers.contains(name)) quantizers.push_back(name);
  }
  absl::StatusOr<std::map<std::string, QuantizerBinding>> bindings =
      BindQuantizers(model, quantizers, options.explicit_pairs);
  if (!bindings.ok()) return bindings.status();

  QdqResult result;
  std::vector<QdqPair> pairs;
  std::map<int, std::string> weight_quantizer_of;
  if (absl::Status s = PlanInputPairs(model.graph(), table, *bindings, &pairs, &weight_quantizer_of,
                                      &result.warnings);
      !s.ok()) {
    return s;
  }
  if (pairs.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no calibrated input quantizer of model '", table.model, "' (", table.quantizers.size(),
        " quantizers in its table) matches a Conv, ConvTranspose, Gemm or MatMul node of the "
        "ONNX model; compute amax first, check the quantizer names, or give explicit pairs"));
  }
  if (absl::Status s = PlanWeightPairs(model.graph(), table, options, weight_quantizer_of, &pairs,
                                       &result.warnings);
      !s.ok()) {
    return s;
  }
  result.model = InsertPairs(model, pairs);
  if (absl::Status s = CheckOnnxModel(result.model); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the QDQ model fails onnx::checker: ", s.message()));
  }
  if (absl::Status s = FinishFp8Qdq(options.fp8_ops, &result.model, &result.warnings); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("model '", table.model, "': ", s.message()));
  }
  return result;
}

}  // namespace qcal::server
