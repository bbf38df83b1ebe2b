#include "server/onnx/qdq_export.h"

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernels/quant_bound.h"
#include "server/base/status_util.h"
#include "server/onnx/existing_qdq.h"
#include "server/onnx/explain_entry.h"
#include "server/onnx/graph_names.h"
#include "server/onnx/onnx_model.h"
#include "server/onnx/qdq_placement.h"
#include "server/onnx/quantizer_binding.h"
#include "server/onnx/tensorrt_signedness.h"
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

// TensorRT: one pair per tensor, shared by every quantized reader (the developer guide's
// placement; TensorRT folds one Q/DQ per tensor, and differing scales on one tensor cannot all
// hold), with the largest amax of its readers. ONNX Runtime: a dedicated pair per reader (its
// quantizer's DedicatedQDQPair option; node_unit.cc QDQ::NodeGroup::CanCreateNodeGroup groups a
// DQ with a node only when the node is its only consumer).
absl::Status PairsFromRequests(std::vector<ActivationRequest>& requests,
                               std::vector<PlacedEntry>& entries, QdqTarget target,
                               std::vector<QdqPair>* pairs, std::vector<std::string>* warnings) {
  std::map<std::string, std::vector<size_t>> groups;  // key -> requests, graph order
  std::vector<std::string> order;
  std::vector<size_t> sorted(requests.size());
  for (size_t k = 0; k < sorted.size(); ++k) sorted[k] = k;
  std::sort(sorted.begin(), sorted.end(), [&](size_t a, size_t b) {
    return std::pair{requests[a].node, requests[a].slot} <
           std::pair{requests[b].node, requests[b].slot};
  });
  for (size_t k : sorted) {
    const ActivationRequest& r = requests[k];
    // A tensor read as INT8 by one node and FP8 by another needs a pair of each format.
    const std::string key = target == QdqTarget::kTensorRT
                                ? absl::StrCat(r.tensor, "/", kernels::QuantFormatName(r.format))
                                : absl::StrCat(r.node, "/", r.slot);
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) order.push_back(key);
    it->second.push_back(k);
  }
  for (const std::string& key : order) {
    const std::vector<size_t>& members = groups[key];
    const ActivationRequest& first = requests[members.front()];
    float amax = first.amax;
    bool is_unsigned = first.is_unsigned;
    std::string quantizer = first.quantizer;
    for (size_t k : members) {
      if (requests[k].amax > amax) {
        amax = requests[k].amax;
        quantizer = requests[k].quantizer;
      }
      is_unsigned = is_unsigned && requests[k].is_unsigned;
    }
    std::set<std::string> quantizers;
    bool differ = false;
    for (size_t k : members) {
      quantizers.insert(requests[k].quantizer);
      differ = differ || requests[k].amax != amax;
    }
    if (differ) {
      warnings->push_back(absl::StrCat(
          "tensor '", first.tensor, "' is read through ", quantizers.size(),
          " quantizers; TensorRT gets one Q/DQ pair per tensor, so all use the largest amax ",
          FormatAmax(amax), " (of '", quantizer, "')"));
    }
    const absl::StatusOr<float> bound = QdqBound(quantizer, first.format, 8, is_unsigned);
    if (!bound.ok()) return bound.status();
    absl::StatusOr<std::vector<float>> scale = ScalesFromAmax(
        std::vector<float>{amax}, *bound, {quantizer, first.tensor, std::nullopt}, warnings);
    if (!scale.ok()) return scale.status();
    QdqPair pair{.base = quantizer,
                 .tensor = first.tensor,
                 .scale = *scale,
                 .axis = std::nullopt,
                 .is_unsigned = is_unsigned,
                 .format = first.format,
                 .consumers = {}};
    for (size_t k : members) {
      pair.consumers.emplace_back(requests[k].node, requests[k].slot);
      std::string& reason = entries[requests[k].entry].entry.reason;
      std::string how =
          absl::StrCat("per-tensor ",
                       first.format == kernels::QuantFormat::kFp8E4M3 ? "fp8 e4m3"
                       : is_unsigned                                  ? "uint8"
                                                                      : "int8",
                       ", amax ", FormatAmax(amax), ", scale ", FormatAmax((*scale)[0]));
      if (members.size() > 1) {
        absl::StrAppend(&how, ", one pair shared by ", members.size(), " readers");
      }
      if (requests[k].quantizer != quantizer) {
        absl::StrAppend(&how, ", from '", quantizer, "' (the largest amax on this tensor)");
        entries[requests[k].entry].entry.quantizer = quantizer;
      }
      reason = reason.empty() ? how : absl::StrCat(how, "; ", reason);
    }
    std::sort(pair.consumers.begin(), pair.consumers.end());
    pairs->push_back(std::move(pair));
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
// the initializer; ONNX Runtime: one per reader (see PairsFromRequests).
absl::Status PlanWeightPairs(const onnx::GraphProto& graph, const AmaxTable& table,
                             const QdqOptions& options,
                             const std::map<int, std::string>& weight_quantizer_of,
                             std::vector<QdqPair>* pairs, std::vector<std::string>* warnings) {
  std::map<std::string, int> initializer_index;
  for (int i = 0; i < graph.initializer_size(); ++i) {
    initializer_index.emplace(graph.initializer(i).name(), i);
  }
  std::map<std::tuple<std::string, int, bool, int, kernels::QuantFormat>, size_t> pair_of_weight;
  std::set<std::string> unsigned_warned;
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
    if (absl::Status s = CheckQdqNumBits(quantizer, num_bits); !s.ok()) return s;
    QCAL_RETURN_IF_ERROR(QdqBound(quantizer, format, num_bits, is_unsigned).status());
    is_unsigned =
        WrittenUnsigned(quantizer, is_unsigned, options.target, &unsigned_warned, warnings);
    const int reader = options.target == QdqTarget::kOnnxRuntime ? i : -1;
    auto [it, inserted] =
        pair_of_weight.emplace(std::tuple{name, *axis, is_unsigned, reader, format}, pairs->size());
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

absl::StatusOr<QdqResult> ExportQdq(const onnx::ModelProto& input, const AmaxTable& table,
                                    const QdqOptions& options) {
  if (absl::Status s = CheckMinOpset(input); !s.ok()) return s;
  // Pairs the model already carries get the table's scales first (existing_qdq.h); the rest of
  // the export works on that model.
  absl::StatusOr<ExistingQdq> existing = RewriteExistingQdq(input, table, options);
  if (!existing.ok()) return existing.status();
  const onnx::ModelProto& model = existing->rewritten > 0 ? existing->model : input;
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
  result.warnings = std::move(existing->warnings);
  std::set<std::string> rewritten_quantizers;
  for (const ExistingPair& p : existing->pairs) {
    if (p.decision == ExistingDecision::kRewritten) rewritten_quantizers.insert(p.quantizer);
  }
  // Quantizers that bind to nothing, or bind but are not calibrated, are reported once each.
  for (const auto& [quantizer, entry] : table.quantizers) {
    const std::optional<QuantizerName> parsed = ParseQuantizerName(quantizer);
    if (!parsed || parsed->kind == QuantizerKind::kWeight) continue;
    if (rewritten_quantizers.contains(quantizer)) continue;
    if (!bindings->contains(quantizer)) {
      if (!entry.amax.empty()) {
        result.warnings.push_back(absl::StrCat(
            "quantizer '", quantizer,
            parsed->kind == QuantizerKind::kResidual
                ? "' matches no residual Add of the ONNX model"
                : "' matches no Conv, ConvTranspose, Gemm, MatMul or pooling node of the ONNX "
                  "model",
            "; nothing exported for it"));
      }
    } else if (entry.amax.empty()) {
      result.warnings.push_back(absl::StrCat(
          "quantizer '", quantizer, "' has no amax (not calibrated); node(s) it binds stay float"));
    }
  }
  QCAL_ASSIGN_OR_RETURN(Placement placement,
                        PlanPlacement(model.graph(), table, *bindings, options, &result.warnings));
  if (placement.requests.empty() && existing->rewritten == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no calibrated input quantizer of model '", table.model, "' (", table.quantizers.size(),
        " quantizers in its table) matches a Conv, ConvTranspose, Gemm, MatMul, pooling node or "
        "residual Add of the ONNX model; compute amax first, check the quantizer names, or give "
        "explicit pairs"));
  }
  std::vector<QdqPair> pairs;
  QCAL_RETURN_IF_ERROR(PairsFromRequests(placement.requests, placement.entries, options.target,
                                         &pairs, &result.warnings));
  QCAL_RETURN_IF_ERROR(PlanWeightPairs(model.graph(), table, options, placement.weight_quantizer_of,
                                       &pairs, &result.warnings));
  result.model = InsertPairs(model, pairs);
  if (absl::Status s = CheckOnnxModel(result.model); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the QDQ model fails onnx::checker: ", s.message()));
  }
  if (absl::Status s = FinishFp8Qdq(options.fp8_ops, &result.model, &result.warnings); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("model '", table.model, "': ", s.message()));
  }
  std::stable_sort(placement.entries.begin(), placement.entries.end(),
                   [](const PlacedEntry& a, const PlacedEntry& b) {
                     return std::pair{a.node, a.slot} < std::pair{b.node, b.slot};
                   });
  // Inputs fed by a pair of the input model: what the rewrite decided (existing_qdq.h).
  std::map<std::pair<std::string, int>, const ExistingPair*> existing_of;
  for (const ExistingPair& p : existing->pairs) {
    for (const ExistingConsumer& c : p.consumers) existing_of[{c.node, c.input}] = &p;
  }
  for (PlacedEntry& e : placement.entries) {
    if (e.entry.rule == kRuleAlreadyQuantized) {
      if (const auto it = existing_of.find({e.entry.node, e.entry.input});
          it != existing_of.end()) {
        const ExistingPair& p = *it->second;
        e.entry.decision = p.decision == ExistingDecision::kRewritten ? ExplainDecision::kRewritten
                                                                      : ExplainDecision::kKept;
        e.entry.quantizer = p.quantizer;
        e.entry.reason = p.reason;
      }
    }
    result.explain.push_back(std::move(e.entry));
  }
  return result;
}

}  // namespace qcal::server
