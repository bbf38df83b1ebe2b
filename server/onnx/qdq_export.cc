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
#include "server/onnx/explain_entry.h"
#include "server/onnx/graph_names.h"
#include "server/onnx/onnx_model.h"
#include "server/onnx/quantizer_binding.h"
#include "server/onnx/residual_add.h"
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
  t.set_data_type(pair.is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8);
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

// One node input that a placement rule quantizes from an activation quantizer's amax.
struct Request {
  int node = 0;
  int slot = 0;
  std::string tensor;
  std::string quantizer;  // whose amax (after sharing: that of the pair)
  float amax = 0;
  bool is_unsigned = false;  // as written (TensorRT: always signed)
  size_t entry = 0;          // index into Planner::entries
};

// An explain entry with its position, for sorting into graph order.
struct PlacedEntry {
  int node = 0;
  int slot = 0;
  ExplainEntry entry;
};

std::string FormatFloat(float v) { return absl::StrFormat("%g", v); }

class Planner {
 public:
  Planner(const onnx::GraphProto& graph, const AmaxTable& table,
          const std::map<std::string, QuantizerBinding>& bindings, const QdqOptions& options,
          std::vector<std::string>* warnings)
      : graph_(graph),
        table_(table),
        options_(options),
        edges_(graph),
        residual_rank_(ResidualAddRanks(graph, edges_)),
        warnings_(warnings) {
    for (const auto& [quantizer, binding] : bindings) {
      for (size_t k = 0; k < binding.nodes.size(); ++k) {
        bound_[{binding.nodes[k], binding.slots[k]}] = quantizer;
      }
    }
  }

  // Weighted ops' data inputs and pooling inputs, then their weights, then residual Adds (which
  // reuse the requests of the first pass), then Concats (which share scales across them all).
  absl::Status Plan() {
    for (int i = 0; i < graph_.node_size(); ++i) {
      const onnx::NodeProto& node = graph_.node(i);
      if (IsQuantizableNode(node)) {
        QCAL_RETURN_IF_ERROR(Activation(i, 0, QuantizerKind::kInput, kRuleWeightedInput).status());
        QCAL_RETURN_IF_ERROR(Weight(i));
      } else if (IsPoolingNode(node)) {
        QCAL_RETURN_IF_ERROR(Activation(i, 0, QuantizerKind::kInput, kRulePooling).status());
      }
    }
    for (int i = 0; i < graph_.node_size(); ++i) {
      if (IsTwoInputAdd(graph_.node(i))) QCAL_RETURN_IF_ERROR(Add(i));
    }
    Concats();
    return absl::OkStatus();
  }

  std::vector<Request> requests;
  std::vector<PlacedEntry> entries;
  // quantizable node -> its weight quantizer, for nodes whose data input is quantized.
  std::map<int, std::string> weight_quantizer_of;

 private:
  size_t AddEntry(int i, int slot, ExplainDecision decision, std::string quantizer,
                  std::string rule, std::string reason) {
    const onnx::NodeProto& node = graph_.node(i);
    entries.push_back({i, slot,
                       ExplainEntry{.node = node.name(),
                                    .op_type = node.op_type(),
                                    .input = slot,
                                    .tensor = node.input(slot),
                                    .decision = decision,
                                    .quantizer = std::move(quantizer),
                                    .rule = std::move(rule),
                                    .reason = std::move(reason)}});
    return entries.size() - 1;
  }

  // The DequantizeLinear of the input model that produces `tensor`, or nullptr. Such inputs get
  // nothing new (the rewrite of existing pairs is qdq_input's job).
  const onnx::NodeProto* DequantizeProducer(const std::string& tensor) const {
    const auto p = edges_.producer.find(tensor);
    if (p == edges_.producer.end()) return nullptr;
    const onnx::NodeProto& node = graph_.node(p->second);
    return node.op_type() == "DequantizeLinear" ? &node : nullptr;
  }

  // The name a quantizer of `kind` for node i would have; "" when nothing names its module.
  std::string LookedFor(int i, QuantizerKind kind) const {
    const std::vector<std::string> modules = CandidateModules(graph_.node(i));
    return modules.empty() ? "" : QuantizerNameOf(modules.front(), kind);
  }

  // Quantizes input `slot` of node i from the quantizer bound there, if it is calibrated. Returns
  // whether a request was made.
  absl::StatusOr<bool> Activation(int i, int slot, QuantizerKind kind, const char* rule) {
    const std::string& tensor = graph_.node(i).input(slot);
    if (const onnx::NodeProto* dq = DequantizeProducer(tensor)) {
      AddEntry(i, slot, ExplainDecision::kKept, "", kRuleAlreadyQuantized,
               absl::StrCat("already quantized: produced by DequantizeLinear '", dq->name(),
                            "' of the input model; nothing inserted"));
      return false;
    }
    const auto bound = bound_.find({i, slot});
    if (bound == bound_.end()) {
      const std::string looked_for = LookedFor(i, kind);
      AddEntry(i, slot, ExplainDecision::kSkipped, looked_for, rule,
               looked_for.empty()
                   ? "no quantizer recorded (the node has no torch.onnx scope to name one by)"
                   : absl::StrCat("no quantizer recorded (looked for '", looked_for, "')"));
      return false;
    }
    return Calibrated(i, slot, bound->second, rule, "");
  }

  // Requests input `slot` of node i from `quantizer` when its table entry has an amax.
  absl::StatusOr<bool> Calibrated(int i, int slot, const std::string& quantizer, const char* rule,
                                  const std::string& why) {
    const auto entry = table_.quantizers.find(quantizer);
    if (entry == table_.quantizers.end() || entry->second.amax.empty()) {
      AddEntry(i, slot, ExplainDecision::kSkipped, quantizer, rule,
               entry == table_.quantizers.end()
                   ? absl::StrCat("quantizer '", quantizer, "' is not in the amax table")
                   : absl::StrCat("quantizer '", quantizer, "' has no amax (not calibrated)"));
      return false;
    }
    const QuantizerAmax& amax = entry->second;
    QCAL_RETURN_IF_ERROR(CheckNumBits(quantizer, amax.num_bits));
    if (amax.amax.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "quantizer '", quantizer, "' has ", amax.amax.size(),
          " amax values; the data input of a node is quantized per tensor (one amax)"));
    }
    const bool is_unsigned = Signedness(quantizer, amax.is_unsigned);
    const size_t e = AddEntry(i, slot, ExplainDecision::kQuantized, quantizer, rule, why);
    requests.push_back({.node = i,
                        .slot = slot,
                        .tensor = graph_.node(i).input(slot),
                        .quantizer = quantizer,
                        .amax = amax.amax[0],
                        .is_unsigned = is_unsigned,
                        .entry = e});
    return true;
  }

  // TensorRT's INT8 is signed (developer guide: "no UINT8"): an unsigned 8-bit quantizer is
  // written as signed INT8, scale amax / 127, as the TensorRT calibration cache does
  // (server/tables/trt_cache.h). ONNX Runtime runs uint8 Q/DQ, so it keeps unsigned.
  bool Signedness(const std::string& quantizer, bool is_unsigned) {
    if (!is_unsigned || options_.target != QdqTarget::kTensorRT) return is_unsigned;
    if (unsigned_warned_.insert(quantizer).second) {
      warnings_->push_back(absl::StrCat(
          "quantizer '", quantizer,
          "' is unsigned; TensorRT's INT8 is signed, so it is written as signed INT8 (scale "
          "amax / 127, zero point int8 0); export with target onnxruntime to keep uint8"));
    }
    return false;
  }

  absl::Status Weight(int i) {
    const onnx::NodeProto& node = graph_.node(i);
    if (const onnx::NodeProto* dq = DequantizeProducer(node.input(1))) {
      AddEntry(i, 1, ExplainDecision::kKept, "", kRuleAlreadyQuantized,
               absl::StrCat("already quantized: produced by DequantizeLinear '", dq->name(),
                            "' of the input model; nothing inserted"));
      return absl::OkStatus();
    }
    const auto bound = bound_.find({i, 1});
    const bool data_quantized = !requests.empty() && requests.back().node == i;
    if (!data_quantized) {
      AddEntry(i, 1, ExplainDecision::kSkipped,
               bound != bound_.end() ? bound->second : LookedFor(i, QuantizerKind::kWeight),
               kRuleWeight,
               "the data input (input 0) gets no new Q/DQ, so the weight stays float too");
      return absl::OkStatus();
    }
    const std::string weight_quantizer =
        bound != bound_.end()
            ? bound->second
            : QuantizerNameOf(ParseQuantizerName(requests.back().quantizer)->module,
                              QuantizerKind::kWeight);
    weight_quantizer_of[i] = weight_quantizer;
    AddEntry(i, 1, ExplainDecision::kQuantized, weight_quantizer, kRuleWeight,
             "per-channel, amax = max |w| per output channel of the initializer (BatchNorm "
             "folded in)");
    return absl::OkStatus();
  }

  // Residual Add: the shortcut input is quantized, the conv-side input is not (residual_add.h).
  absl::Status Add(int i) {
    const ResidualAdd r = ClassifyResidualAdd(graph_, edges_, i);
    if (r.kind == ResidualAdd::kConstant) return absl::OkStatus();
    const std::vector<std::string> modules = CandidateModules(graph_.node(i));
    const auto rank = residual_rank_.find(i);
    const std::string looked_for =
        modules.empty() ? ""
                        : QuantizerNameOf(modules.front(), QuantizerKind::kResidual,
                                          rank == residual_rank_.end() ? 0 : rank->second);
    if (r.kind == ResidualAdd::kNotResidual) {
      for (int slot = 0; slot < 2; ++slot) {
        AddEntry(i, slot, ExplainDecision::kSkipped, "", kRuleNotResidual, r.reason);
      }
      return absl::OkStatus();
    }
    const int shortcut = r.shortcut_slot;
    const onnx::NodeProto& conv = graph_.node(r.conv_node);
    AddEntry(i, 1 - shortcut, ExplainDecision::kSkipped, "", kRuleResidualConvSide,
             absl::StrCat("conv-side input of a residual Add: it fuses into the epilogue of ",
                          conv.op_type(), " '", conv.name(), "' (TensorRT); ", r.reason));
    const std::string& tensor = graph_.node(i).input(shortcut);
    if (const onnx::NodeProto* dq = DequantizeProducer(tensor)) {
      AddEntry(i, shortcut, ExplainDecision::kKept, "", kRuleAlreadyQuantized,
               absl::StrCat("already quantized: produced by DequantizeLinear '", dq->name(),
                            "' of the input model; nothing inserted"));
      return absl::OkStatus();
    }
    const auto bound = bound_.find({i, shortcut});
    // The same tensor already quantized for a Conv or pool: one tensor, one scale.
    for (const Request& other : requests) {
      if (other.tensor != tensor) continue;
      const onnx::NodeProto& reader = graph_.node(other.node);
      std::string why = absl::StrCat("the shortcut is also input ", other.slot, " of ",
                                     reader.op_type(), " '", reader.name(), "': same tensor, so ",
                                     options_.target == QdqTarget::kTensorRT
                                         ? "it shares that Q/DQ pair and scale"
                                         : "a dedicated pair with that scale");
      if (bound != bound_.end()) {
        absl::StrAppend(&why, "; '", bound->second, "' is not used (one scale per tensor)");
      }
      absl::StrAppend(&why, "; ", r.reason);
      const size_t e = AddEntry(i, shortcut, ExplainDecision::kQuantized, other.quantizer,
                                kRuleResidualShortcut, why);
      Request copy = other;
      copy.node = i;
      copy.slot = shortcut;
      copy.entry = e;
      requests.push_back(copy);
      return absl::OkStatus();
    }
    if (bound == bound_.end()) {
      AddEntry(
          i, shortcut, ExplainDecision::kSkipped, looked_for, kRuleResidualShortcut,
          absl::StrCat("no residual quantizer recorded (looked for '", looked_for,
                       "'), and the shortcut is no quantized Conv's or pool's input; ", r.reason));
      return absl::OkStatus();
    }
    return Calibrated(i, shortcut, bound->second, kRuleResidualShortcut, r.reason).status();
  }

  // Concat: its inputs and output share one scale, the largest amax among their quantized
  // readers (TensorRT developer guide: otherwise a requantization stays after the concat).
  // A Concat input whose tensor is quantized for another reader reads that pair too.
  void Concats() {
    std::map<std::string, std::string> parent;  // union-find over tensors
    auto find = [&](std::string t) {
      while (parent.contains(t) && parent[t] != t) t = parent[t];
      return t;
    };
    auto unite = [&](const std::string& a, const std::string& b) {
      parent.emplace(a, a);
      parent.emplace(b, b);
      parent[find(a)] = find(b);
    };
    std::map<std::string, std::string> concat_of;  // tensor -> a Concat it belongs to
    for (int i = 0; i < graph_.node_size(); ++i) {
      const onnx::NodeProto& node = graph_.node(i);
      if (node.op_type() != "Concat" || !(node.domain().empty() || node.domain() == "ai.onnx") ||
          node.output_size() < 1) {
        continue;
      }
      for (const std::string& in : node.input()) {
        if (in.empty() || edges_.constants.contains(in)) continue;
        unite(in, node.output(0));
        concat_of[in] = node.name();
      }
      concat_of[node.output(0)] = node.name();
      const size_t before = requests.size();
      for (int slot = 0; slot < node.input_size(); ++slot) {
        const std::string& in = node.input(slot);
        if (in.empty() || edges_.constants.contains(in)) continue;
        const Request* other = nullptr;
        for (size_t k = 0; k < before; ++k) {
          if (requests[k].tensor == in) {
            other = &requests[k];
            break;
          }
        }
        if (other == nullptr) {
          AddEntry(i, slot, ExplainDecision::kSkipped, "", kRuleConcat,
                   "no other reader quantizes this tensor; TensorRT moves a quantized Concat "
                   "output's Q/DQ onto the inputs itself");
          continue;
        }
        const size_t e =
            AddEntry(i, slot, ExplainDecision::kQuantized, other->quantizer, kRuleConcat,
                     absl::StrCat("the tensor is quantized for '", graph_.node(other->node).name(),
                                  "'; the Concat reads the same scale so it can run in INT8"));
        Request copy = *other;
        copy.node = i;
        copy.slot = slot;
        copy.entry = e;
        requests.push_back(copy);
      }
    }
    if (parent.empty()) return;
    std::map<std::string, float> group_amax;
    std::map<std::string, bool> group_signed;
    for (const Request& r : requests) {
      if (!parent.contains(r.tensor)) continue;
      const std::string g = find(r.tensor);
      group_amax[g] = std::max(group_amax[g], r.amax);
      group_signed[g] = group_signed[g] || !r.is_unsigned;
    }
    std::set<std::pair<std::string, std::string>> warned;
    for (Request& r : requests) {
      if (!parent.contains(r.tensor)) continue;
      const std::string g = find(r.tensor);
      const float amax = group_amax[g];
      std::string& reason = entries[r.entry].entry.reason;
      if (r.amax < amax) {
        const std::string note =
            absl::StrCat("amax raised from ", FormatFloat(r.amax), " to ", FormatFloat(amax),
                         " to share one scale across Concat '", concat_of[r.tensor], "'");
        absl::StrAppend(&reason, reason.empty() ? "" : "; ", note);
        if (warned.insert({r.quantizer, r.tensor}).second) {
          warnings_->push_back(absl::StrCat("quantizer '", r.quantizer, "' tensor '", r.tensor,
                                            "': ", note, " (TensorRT keeps it INT8)"));
        }
        r.amax = amax;
      }
      if (r.is_unsigned && group_signed[g]) {
        absl::StrAppend(&reason, reason.empty() ? "" : "; ",
                        "written signed to share one scale across the Concat");
        r.is_unsigned = false;
      }
    }
  }

  const onnx::GraphProto& graph_;
  const AmaxTable& table_;
  const QdqOptions& options_;
  const GraphEdges edges_;
  const std::map<int, int> residual_rank_;  // residual Add -> its rank in its block
  std::vector<std::string>* warnings_;
  std::map<std::pair<int, int>, std::string> bound_;  // (node, slot) -> quantizer
  std::set<std::string> unsigned_warned_;
};

// TensorRT: one pair per tensor, shared by every quantized reader (the developer guide's
// placement; TensorRT folds one Q/DQ per tensor, and differing scales on one tensor cannot all
// hold), with the largest amax of its readers. ONNX Runtime: a dedicated pair per reader (its
// quantizer's DedicatedQDQPair option; node_unit.cc QDQ::NodeGroup::CanCreateNodeGroup groups a
// DQ with a node only when the node is its only consumer).
absl::Status PairsFromRequests(std::vector<Request>& requests, std::vector<PlacedEntry>& entries,
                               QdqTarget target, std::vector<QdqPair>* pairs,
                               std::vector<std::string>* warnings) {
  std::map<std::string, std::vector<size_t>> groups;  // key -> requests, graph order
  std::vector<std::string> order;
  std::vector<size_t> sorted(requests.size());
  for (size_t k = 0; k < sorted.size(); ++k) sorted[k] = k;
  std::sort(sorted.begin(), sorted.end(), [&](size_t a, size_t b) {
    return std::pair{requests[a].node, requests[a].slot} <
           std::pair{requests[b].node, requests[b].slot};
  });
  for (size_t k : sorted) {
    const Request& r = requests[k];
    const std::string key =
        target == QdqTarget::kTensorRT ? r.tensor : absl::StrCat(r.node, "/", r.slot);
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) order.push_back(key);
    it->second.push_back(k);
  }
  for (const std::string& key : order) {
    const std::vector<size_t>& members = groups[key];
    const Request& first = requests[members.front()];
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
          FormatFloat(amax), " (of '", quantizer, "')"));
    }
    const absl::StatusOr<float> bound = kernels::QuantBound(8, is_unsigned);
    if (!bound.ok()) return bound.status();
    absl::StatusOr<std::vector<float>> scale = ScalesFromAmax(
        std::vector<float>{amax}, *bound, {quantizer, first.tensor, std::nullopt}, warnings);
    if (!scale.ok()) return scale.status();
    QdqPair pair{.base = quantizer,
                 .tensor = first.tensor,
                 .scale = *scale,
                 .axis = std::nullopt,
                 .is_unsigned = is_unsigned,
                 .consumers = {}};
    for (size_t k : members) {
      pair.consumers.emplace_back(requests[k].node, requests[k].slot);
      std::string& reason = entries[requests[k].entry].entry.reason;
      std::string how = absl::StrCat("per-tensor ", is_unsigned ? "uint8" : "int8", ", amax ",
                                     FormatFloat(amax), ", scale ", FormatFloat((*scale)[0]));
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
  std::map<std::tuple<std::string, int, bool, int>, size_t> pair_of_weight;
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
    if (const auto entry = table.quantizers.find(quantizer); entry != table.quantizers.end()) {
      if (absl::Status s = CheckWeightEntry(entry->second, weight); !s.ok()) return s;
      num_bits = entry->second.num_bits;
      is_unsigned = entry->second.is_unsigned;
    }
    if (absl::Status s = CheckNumBits(quantizer, num_bits); !s.ok()) return s;
    if (is_unsigned && options.target == QdqTarget::kTensorRT) {
      is_unsigned = false;
      if (unsigned_warned.insert(quantizer).second) {
        warnings->push_back(absl::StrCat(
            "quantizer '", quantizer,
            "' is unsigned; TensorRT's INT8 is signed, so it is written as signed INT8 (scale "
            "amax / 127, zero point int8 0); export with target onnxruntime to keep uint8"));
      }
    }
    const int reader = options.target == QdqTarget::kOnnxRuntime ? i : -1;
    auto [it, inserted] =
        pair_of_weight.emplace(std::tuple{name, *axis, is_unsigned, reader}, pairs->size());
    if (inserted) {
      absl::StatusOr<std::vector<float>> amax = PerChannelAbsMax(weight, *axis);
      if (!amax.ok()) return amax.status();
      const absl::StatusOr<float> bound = kernels::QuantBound(num_bits, is_unsigned);
      if (!bound.ok()) return bound.status();
      absl::StatusOr<std::vector<float>> scale =
          ScalesFromAmax(*amax, *bound, {quantizer, name, *axis}, warnings);
      if (!scale.ok()) return scale.status();
      pairs->push_back({.base = quantizer,
                        .tensor = name,
                        .scale = *std::move(scale),
                        .axis = *axis,
                        .is_unsigned = is_unsigned,
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
  // Quantizers that bind to nothing, or bind but are not calibrated, are reported once each.
  for (const auto& [quantizer, entry] : table.quantizers) {
    const std::optional<QuantizerName> parsed = ParseQuantizerName(quantizer);
    if (!parsed || parsed->kind == QuantizerKind::kWeight) continue;
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
  Planner planner(model.graph(), table, *bindings, options, &result.warnings);
  QCAL_RETURN_IF_ERROR(planner.Plan());
  if (planner.requests.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no calibrated input quantizer of model '", table.model, "' (", table.quantizers.size(),
        " quantizers in its table) matches a Conv, ConvTranspose, Gemm, MatMul, pooling node or "
        "residual Add of the ONNX model; compute amax first, check the quantizer names, or give "
        "explicit pairs"));
  }
  std::vector<QdqPair> pairs;
  QCAL_RETURN_IF_ERROR(PairsFromRequests(planner.requests, planner.entries, options.target, &pairs,
                                         &result.warnings));
  QCAL_RETURN_IF_ERROR(PlanWeightPairs(model.graph(), table, options, planner.weight_quantizer_of,
                                       &pairs, &result.warnings));
  result.model = InsertPairs(model, pairs);
  if (absl::Status s = CheckOnnxModel(result.model); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the QDQ model fails onnx::checker: ", s.message()));
  }
  std::stable_sort(planner.entries.begin(), planner.entries.end(),
                   [](const PlacedEntry& a, const PlacedEntry& b) {
                     return std::pair{a.node, a.slot} < std::pair{b.node, b.slot};
                   });
  for (PlacedEntry& e : planner.entries) result.explain.push_back(std::move(e.entry));
  return result;
}

}  // namespace qcal::server
