#include "server/onnx/qdq_placement.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/base/status_util.h"
#include "server/onnx/fp8_qdq.h"
#include "server/onnx/residual_add.h"
#include "server/onnx/tensorrt_signedness.h"
#include "server/onnx/torch_onnx_names.h"

namespace qcal::server {
namespace {

// One pass of the rules over a graph. A class because the rules share the graph's edges, the
// bindings by (node, slot), and the requests made so far (a residual shortcut or Concat input
// reuses the pair another rule asked for on the same tensor).
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

  std::vector<ActivationRequest> requests;
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
    QCAL_RETURN_IF_ERROR(CheckQdqNumBits(quantizer, amax.num_bits));
    if (amax.amax.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "quantizer '", quantizer, "' has ", amax.amax.size(),
          " amax values; the data input of a node is quantized per tensor (one amax)"));
    }
    // FP8's checks (signed, 8 bits) come before TensorRT's unsigned-as-signed rule could hide
    // an unsigned FP8 entry.
    QCAL_RETURN_IF_ERROR(
        QdqBound(quantizer, amax.format, amax.num_bits, amax.is_unsigned).status());
    const bool is_unsigned =
        WrittenUnsigned(quantizer, amax.is_unsigned, options_.target, &unsigned_warned_, warnings_);
    const size_t e = AddEntry(i, slot, ExplainDecision::kQuantized, quantizer, rule, why);
    requests.push_back({.node = i,
                        .slot = slot,
                        .tensor = graph_.node(i).input(slot),
                        .quantizer = quantizer,
                        .amax = amax.amax[0],
                        .is_unsigned = is_unsigned,
                        .entry = e,
                        .format = amax.format});
    return true;
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
    const bool data_requested = !requests.empty() && requests.back().node == i;
    // Input 0 quantized by a pair of the input model counts too: TensorRT runs a Conv in INT8
    // only when both its inputs are quantized.
    const bool data_in_input_model = DequantizeProducer(node.input(0)) != nullptr;
    if (!data_requested && !data_in_input_model) {
      AddEntry(i, 1, ExplainDecision::kSkipped,
               bound != bound_.end() ? bound->second : LookedFor(i, QuantizerKind::kWeight),
               kRuleWeight,
               "the data input (input 0) gets no new Q/DQ, so the weight stays float too");
      return absl::OkStatus();
    }
    std::string weight_quantizer;
    if (bound != bound_.end()) {
      weight_quantizer = bound->second;
    } else if (data_requested) {
      weight_quantizer = QuantizerNameOf(ParseQuantizerName(requests.back().quantizer)->module,
                                         QuantizerKind::kWeight);
    } else {
      weight_quantizer = LookedFor(i, QuantizerKind::kWeight);
      // No scope and no weight name to name it by: the node's own name keeps new names unique.
      if (weight_quantizer.empty())
        weight_quantizer = absl::StrCat(node.name(), "._weight_quantizer");
    }
    weight_quantizer_of[i] = weight_quantizer;
    AddEntry(i, 1, ExplainDecision::kQuantized, weight_quantizer, kRuleWeight,
             absl::StrCat(data_requested ? "" : "input 0 is quantized by the input model's pair; ",
                          "per-channel, amax = max |w| per output channel of the initializer "
                          "(as exported: an eval-mode export has folded BatchNorm into it)"));
    return absl::OkStatus();
  }

  // An explicit pair (--map) that puts a residual quantizer on an Add input no rule quantizes
  // would be dropped here while the TensorRT cache still used it: refused instead.
  absl::Status RefuseMisplacedMap(int i, int slot, const std::string& why,
                                  const std::string& reason) const {
    const auto bound = bound_.find({i, slot});
    if (bound == bound_.end() || !options_.explicit_pairs.contains(bound->second)) {
      return absl::OkStatus();
    }
    const std::optional<QuantizerName> parsed = ParseQuantizerName(bound->second);
    if (!parsed || parsed->kind != QuantizerKind::kResidual) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "explicit pair '", bound->second, "' -> '", graph_.node(i).input(slot),
        "': a residual quantizer quantizes the shortcut input of a residual Add, but for Add '",
        graph_.node(i).name(), "' ", why, " (", reason, "); map it to the shortcut or drop it"));
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
        QCAL_RETURN_IF_ERROR(RefuseMisplacedMap(i, slot, "it is not a residual Add", r.reason));
        AddEntry(i, slot, ExplainDecision::kSkipped, "", kRuleNotResidual, r.reason);
      }
      return absl::OkStatus();
    }
    const int shortcut = r.shortcut_slot;
    QCAL_RETURN_IF_ERROR(
        RefuseMisplacedMap(i, 1 - shortcut,
                           absl::StrCat("that is its conv-side input; its shortcut is '",
                                        graph_.node(i).input(shortcut), "'"),
                           r.reason));
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
    for (const ActivationRequest& other : requests) {
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
      ActivationRequest copy = other;
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
        const ActivationRequest* other = nullptr;
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
                                  "'; the Concat reads the same scale so it can run quantized"));
        ActivationRequest copy = *other;
        copy.node = i;
        copy.slot = slot;
        copy.entry = e;
        requests.push_back(copy);
      }
    }
    if (parent.empty()) return;
    // Scales are shared within one format only: an FP8 scale (amax / 448) and an INT8 one
    // (amax / 127) differ whatever their amax, so raising one to the other's amax gains nothing.
    using Group = std::pair<std::string, kernels::QuantFormat>;
    std::map<Group, float> group_amax;
    std::map<Group, bool> group_signed;
    for (const ActivationRequest& r : requests) {
      if (!parent.contains(r.tensor)) continue;
      const Group g{find(r.tensor), r.format};
      group_amax[g] = std::max(group_amax[g], r.amax);
      group_signed[g] = group_signed[g] || !r.is_unsigned;
    }
    std::set<std::pair<std::string, std::string>> warned;
    for (ActivationRequest& r : requests) {
      if (!parent.contains(r.tensor)) continue;
      const Group g{find(r.tensor), r.format};
      const float amax = group_amax[g];
      std::string& reason = entries[r.entry].entry.reason;
      if (r.amax < amax) {
        const std::string note =
            absl::StrCat("amax raised from ", FormatAmax(r.amax), " to ", FormatAmax(amax),
                         " to share one scale across Concat '", concat_of[r.tensor], "'");
        absl::StrAppend(&reason, reason.empty() ? "" : "; ", note);
        if (warned.insert({r.quantizer, r.tensor}).second) {
          warnings_->push_back(absl::StrCat("quantizer '", r.quantizer, "' tensor '", r.tensor,
                                            "': ", note,
                                            " (so TensorRT can drop the requantization)"));
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

}  // namespace

// opset-13 QuantizeLinear stores int8/uint8 only; other widths would clamp to the wrong range.
absl::Status CheckQdqNumBits(absl::string_view quantizer, int num_bits) {
  if (num_bits == 8) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("quantizer '", quantizer, "' has num_bits ", num_bits,
                   "; the QDQ export (opset-13 QuantizeLinear, int8/uint8) supports 8 only"));
}
std::string FormatAmax(float v) { return absl::StrFormat("%g", v); }

absl::StatusOr<Placement> PlanPlacement(const onnx::GraphProto& graph, const AmaxTable& table,
                                        const std::map<std::string, QuantizerBinding>& bindings,
                                        const QdqOptions& options,
                                        std::vector<std::string>* warnings) {
  Planner planner(graph, table, bindings, options, warnings);
  QCAL_RETURN_IF_ERROR(planner.Plan());
  return Placement{.requests = std::move(planner.requests),
                   .entries = std::move(planner.entries),
                   .weight_quantizer_of = std::move(planner.weight_quantizer_of)};
}

}  // namespace qcal::server
