#include "server/onnx/existing_qdq.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/quant_bound.h"
#include "server/onnx/graph_names.h"
#include "server/onnx/onnx_model.h"
#include "server/onnx/tensorrt_signedness.h"
#include "server/onnx/torch_onnx_names.h"
#include "server/onnx/weight_amax.h"
#include "server/tables/qdq_scale.h"

namespace qcal::server {
namespace {

bool IsOp(const onnx::NodeProto& node, absl::string_view op) {
  return (node.domain().empty() || node.domain() == "ai.onnx") && node.op_type() == op;
}

// Producers, readers and constants of the main graph.
class GraphIndex {
 public:
  explicit GraphIndex(const onnx::GraphProto& graph) : graph_(graph) {
    for (int i = 0; i < graph.node_size(); ++i) {
      const onnx::NodeProto& node = graph.node(i);
      for (const std::string& out : node.output()) producer_.emplace(out, i);
      for (int slot = 0; slot < node.input_size(); ++slot) {
        if (!node.input(slot).empty()) readers_[node.input(slot)].emplace_back(i, slot);
      }
    }
    for (int i = 0; i < graph.initializer_size(); ++i) {
      initializer_.emplace(graph.initializer(i).name(), i);
    }
  }

  // The node producing `tensor`; nullptr for graph inputs and initializers.
  const onnx::NodeProto* Producer(const std::string& tensor) const {
    const auto it = producer_.find(tensor);
    return it == producer_.end() ? nullptr : &graph_.node(it->second);
  }

  // (node index, input slot) of every main-graph node reading `tensor`, in graph order.
  const std::vector<std::pair<int, int>>& Readers(const std::string& tensor) const {
    static const std::vector<std::pair<int, int>> kNone;
    const auto it = readers_.find(tensor);
    return it == readers_.end() ? kNone : it->second;
  }

  // The value of a constant tensor (an initializer, or a Constant node's `value`); nullptr for
  // anything computed or fed at run time.
  const onnx::TensorProto* ConstantTensor(const std::string& tensor) const {
    if (const auto it = initializer_.find(tensor); it != initializer_.end()) {
      return &graph_.initializer(it->second);
    }
    const onnx::NodeProto* node = Producer(tensor);
    if (node == nullptr || !IsOp(*node, "Constant")) return nullptr;
    for (const onnx::AttributeProto& attr : node->attribute()) {
      if (attr.name() == "value" && attr.has_t()) return &attr.t();
    }
    return nullptr;
  }

  // The dims of a constant tensor (also Constant's value_float(s)); nullopt when not constant.
  std::optional<std::vector<int64_t>> ConstantDims(const std::string& tensor) const {
    if (const onnx::TensorProto* t = ConstantTensor(tensor)) {
      return std::vector<int64_t>(t->dims().begin(), t->dims().end());
    }
    const onnx::NodeProto* node = Producer(tensor);
    if (node == nullptr || !IsOp(*node, "Constant") || node->attribute_size() != 1) {
      return std::nullopt;
    }
    const onnx::AttributeProto& attr = node->attribute(0);
    if (attr.name() == "value_float" || attr.name() == "value_int") return std::vector<int64_t>{};
    if (attr.name() == "value_floats") return std::vector<int64_t>{attr.floats_size()};
    if (attr.name() == "value_ints") return std::vector<int64_t>{attr.ints_size()};
    return std::nullopt;
  }

 private:
  const onnx::GraphProto& graph_;
  std::map<std::string, int> producer_;
  std::map<std::string, std::vector<std::pair<int, int>>> readers_;
  std::map<std::string, int> initializer_;
};

// A pair found in the graph, before deciding.
struct Found {
  int q = -1;                                // node index; -1 for a lone DequantizeLinear
  std::vector<int> dq;                       // node indices
  std::vector<std::pair<int, int>> readers;  // (node, slot) reading a DequantizeLinear output
  ExistingPair pair;
};

std::string PairName(const ExistingPair& pair) {
  std::string name = pair.q_node.empty() ? "" : absl::StrCat("QuantizeLinear '", pair.q_node, "'");
  for (const std::string& dq : pair.dq_nodes) {
    absl::StrAppend(&name, name.empty() ? "" : " / ", "DequantizeLinear '", dq, "'");
  }
  return name;
}

// Fills the nodes reading the pair's DequantizeLinear outputs.
void AddReaders(const onnx::GraphProto& graph, const GraphIndex& index, Found* f) {
  for (int dq : f->dq) {
    for (const auto& [node, slot] : index.Readers(graph.node(dq).output(0))) {
      f->readers.emplace_back(node, slot);
      f->pair.consumers.push_back({.node = graph.node(node).name(),
                                   .op_type = graph.node(node).op_type(),
                                   .input = slot,
                                   .tensor = graph.node(dq).output(0)});
    }
  }
}

// Every QuantizeLinear with its DequantizeLinear readers, and every DequantizeLinear that no
// QuantizeLinear feeds, in graph order.
std::vector<Found> FindPairs(const onnx::GraphProto& graph, const GraphIndex& index) {
  std::vector<Found> found;
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    if (IsOp(node, "DequantizeLinear") && node.input_size() > 0 && node.output_size() > 0) {
      const onnx::NodeProto* producer = index.Producer(node.input(0));
      if (producer != nullptr && IsOp(*producer, "QuantizeLinear")) continue;  // with its Q
      Found lone{.q = -1, .dq = {i}, .readers = {}, .pair = {}};
      lone.pair.dq_nodes = {node.name()};
      lone.pair.tensor = node.input(0);
      lone.pair.reason =
          "DequantizeLinear without QuantizeLinear: pre-quantized integer data, whose scale "
          "belongs to the stored integers";
      AddReaders(graph, index, &lone);
      found.push_back(std::move(lone));
      continue;
    }
    if (!IsOp(node, "QuantizeLinear") || node.input_size() < 2 || node.output_size() < 1) continue;
    Found f{.q = i, .dq = {}, .readers = {}, .pair = {}};
    f.pair.q_node = node.name();
    f.pair.tensor = node.input(0);
    std::vector<std::string> others;
    for (const auto& [reader, slot] : index.Readers(node.output(0))) {
      const onnx::NodeProto& r = graph.node(reader);
      if (IsOp(r, "DequantizeLinear") && slot == 0 && r.input_size() >= 2 && r.output_size() > 0) {
        f.dq.push_back(reader);
        f.pair.dq_nodes.push_back(r.name());
      } else {
        others.push_back(absl::StrCat(r.op_type(), " '", r.name(), "'"));
      }
    }
    if (f.dq.empty()) continue;  // not fake quant (QLinear* ops read it)
    if (!others.empty()) {
      f.pair.reason = absl::StrCat("its QuantizeLinear output also feeds ",
                                   absl::StrJoin(others, ", "), ", not only DequantizeLinear");
    }
    AddReaders(graph, index, &f);
    found.push_back(std::move(f));
  }
  return found;
}

// The tensor behind a weight input: "w" for w -> [QuantizeLinear ->] DequantizeLinear -> input.
std::string WeightBehind(const std::string& tensor, const GraphIndex& index) {
  std::string name = tensor;
  for (absl::string_view op : {"DequantizeLinear", "QuantizeLinear"}) {
    const onnx::NodeProto* producer = index.Producer(name);
    if (producer == nullptr || !IsOp(*producer, op) || producer->input_size() == 0) break;
    name = producer->input(0);
  }
  return name;
}

// Quantizers a consumer names for the tensor it reads in `slot`, most likely first.
std::vector<std::string> ConsumerQuantizers(const onnx::NodeProto& node, int slot,
                                            const GraphIndex& index) {
  std::vector<std::string> names;
  if (IsQuantizableNode(node) && slot <= 1) {
    onnx::NodeProto seen = node;  // a scope-less node is matched by its weight's name
    seen.set_input(1, WeightBehind(node.input(1), index));
    const QuantizerKind kind = slot == 0 ? QuantizerKind::kInput : QuantizerKind::kWeight;
    for (const std::string& module : CandidateModules(seen)) {
      names.push_back(QuantizerNameOf(module, kind));
    }
    return names;
  }
  for (bool strip : {false, true}) {
    const std::optional<std::string> module = ModuleOfScope(node.name(), strip);
    if (!module) break;
    if (slot == 0) names.push_back(QuantizerNameOf(*module, QuantizerKind::kInput));
    if (IsOp(node, "Add")) {  // resnet.py's `out += self.residual_quantizer(identity)`
      names.push_back(module->empty() ? "residual_quantizer"
                                      : absl::StrCat(*module, ".residual_quantizer"));
    }
  }
  return names;
}

// The quantizer a scope names: pytorch-quantization's "/conv1/_input_quantizer/QuantizeLinear".
std::vector<std::string> ScopeQuantizers(const std::string& node_name, const AmaxTable& table) {
  std::vector<std::string> names;
  for (bool strip : {false, true}) {
    const std::optional<std::string> path = ModuleOfScope(node_name, strip);
    if (!path || path->empty()) break;
    const bool is_quantizer = table.quantizers.contains(*path) || ParseQuantizerName(*path) ||
                              absl::EndsWith(*path, "_quantizer");
    if (is_quantizer && std::find(names.begin(), names.end(), *path) == names.end()) {
      names.push_back(*path);
    }
  }
  return names;
}

// Whether the table covers `quantizer` for this pair; *why_not says why not.
bool Covers(const AmaxTable& table, const std::string& quantizer, bool is_weight,
            std::string* why_not) {
  const auto entry = table.quantizers.find(quantizer);
  if (is_weight) {
    // The export's rule: a weight is quantized with its module's calibrated input quantizer.
    if (entry != table.quantizers.end()) return true;
    const std::optional<QuantizerName> parsed = ParseQuantizerName(quantizer);
    if (parsed && parsed->kind == QuantizerKind::kWeight) {
      const auto input =
          table.quantizers.find(QuantizerNameOf(parsed->module, QuantizerKind::kInput));
      if (input != table.quantizers.end() && !input->second.amax.empty()) return true;
      *why_not = absl::StrCat("the table has neither '", quantizer, "' nor a calibrated '",
                              QuantizerNameOf(parsed->module, QuantizerKind::kInput), "'");
      return false;
    }
    *why_not = absl::StrCat("the table has no quantizer '", quantizer, "'");
    return false;
  }
  if (entry == table.quantizers.end()) {
    *why_not = absl::StrCat("the table has no quantizer '", quantizer, "'");
    return false;
  }
  if (entry->second.amax.empty()) {
    *why_not =
        absl::StrCat("quantizer '", quantizer, "' is in the table but not calibrated (no amax)");
    return false;
  }
  return true;
}

// Picks the pair's quantizer (ExistingPair::quantizer); false with pair->reason when none covers
// it. `via` says how it was found.
bool ChooseQuantizer(const onnx::GraphProto& graph, const GraphIndex& index, const AmaxTable& table,
                     const QdqOptions& options, const Found& found, ExistingPair* pair,
                     std::string* via) {
  std::vector<std::string> candidates;
  for (const auto& [quantizer, tensor] : options.explicit_pairs) {
    if (tensor == pair->tensor) candidates.push_back(quantizer);
  }
  *via = "explicit pair";
  if (candidates.empty()) {
    candidates = ScopeQuantizers(pair->q_node, table);
    *via = "node scope";
  }
  bool by_consumers = false;
  if (candidates.empty()) {
    *via = "consumers";
    by_consumers = true;
    for (const auto& [node, slot] : found.readers) {
      for (std::string& q : ConsumerQuantizers(graph.node(node), slot, index)) {
        if (std::find(candidates.begin(), candidates.end(), q) == candidates.end()) {
          candidates.push_back(std::move(q));
        }
      }
    }
  }
  if (candidates.empty()) {
    pair->reason = "neither its node names nor its consumers name a quantizer";
    return false;
  }
  std::vector<std::string> covered;
  std::string first_why_not;
  for (const std::string& q : candidates) {
    std::string why_not;
    if (Covers(table, q, pair->is_weight, &why_not)) {
      covered.push_back(q);
      if (!by_consumers) break;  // an explicit pair or a scope names one quantizer
    } else if (first_why_not.empty()) {
      first_why_not = std::move(why_not);
      pair->quantizer = q;
    }
  }
  if (covered.empty()) {
    pair->reason = first_why_not;
    return false;
  }
  pair->quantizer = covered.front();
  if (!pair->is_weight) {  // several calibrated consumers: the largest amax, so none clips
    for (const std::string& q : covered) {
      const std::vector<float>& amax = table.quantizers.at(q).amax;
      const std::vector<float>& best = table.quantizers.at(pair->quantizer).amax;
      if (amax.size() == 1 && best.size() == 1 && amax[0] > best[0]) pair->quantizer = q;
    }
    if (covered.size() > 1) {
      absl::StrAppend(via, " (", absl::StrJoin(covered, ", "), " read it; the largest amax)");
    }
  }
  return true;
}

// What a rewritten pair writes.
struct Written {
  std::vector<float> scale;
  std::optional<int> axis;
  bool is_unsigned = false;
};

// "QuantizeLinear 'n' (tensor 't', quantizer 'q')": the prefix of this file's errors.
std::string Where(const ExistingPair& pair) {
  return absl::StrCat(PairName(pair), " (tensor '", pair.tensor, "', quantizer '", pair.quantizer,
                      "')");
}

absl::Status Prefixed(const ExistingPair& pair, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(Where(pair), ": ", s.message()));
}

// opset-13 QuantizeLinear stores int8/uint8 only, as for the export's new pairs.
absl::Status CheckNumBits(const ExistingPair& pair, int num_bits) {
  if (num_bits == 8) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(Where(pair), ": num_bits ", num_bits,
                   "; the QDQ export (opset-13 QuantizeLinear, int8/uint8) supports 8 only"));
}

// Scale of an activation pair: the table's one amax / bound, per tensor.
absl::StatusOr<Written> ActivationScale(const ExistingPair& pair, const QuantizerAmax& entry,
                                        bool is_unsigned, std::vector<std::string>* warnings) {
  if (absl::Status s = CheckNumBits(pair, entry.num_bits); !s.ok()) return s;
  if (entry.amax.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(pair), ": the quantizer has ", entry.amax.size(),
                     " amax values; an activation is quantized per tensor (one amax)"));
  }
  const absl::StatusOr<float> bound = kernels::QuantBound(entry.num_bits, is_unsigned);
  if (!bound.ok()) return Prefixed(pair, bound.status());
  absl::StatusOr<std::vector<float>> scale =
      ScalesFromAmax(entry.amax, *bound, {pair.quantizer, pair.tensor, std::nullopt}, warnings);
  if (!scale.ok()) return Prefixed(pair, scale.status());
  return Written{.scale = *std::move(scale), .axis = std::nullopt, .is_unsigned = is_unsigned};
}

// Scale of a weight pair: max |w| of the constant, per channel on the pair's own axis when its
// scale has one value per channel, else per tensor. nullopt (with *why_not) when the existing
// scale's shape cannot be read.
absl::StatusOr<std::optional<Written>> WeightScale(
    const onnx::NodeProto& q, const GraphIndex& index, const ExistingPair& pair, int num_bits,
    bool is_unsigned, std::vector<std::string>* warnings, std::string* why_not) {
  if (absl::Status s = CheckNumBits(pair, num_bits); !s.ok()) return s;
  const onnx::TensorProto* weight = index.ConstantTensor(pair.tensor);
  const std::optional<std::vector<int64_t>> scale_dims = index.ConstantDims(q.input(1));
  if (weight == nullptr || !scale_dims || scale_dims->size() > 1) {
    *why_not = absl::StrCat("its scale '", q.input(1),
                            "' is not a constant scalar or vector, so its granularity is unknown");
    return std::optional<Written>();
  }
  if (weight->dims_size() == 0) {
    *why_not = absl::StrCat("'", pair.tensor, "' is a scalar constant, not a weight");
    return std::optional<Written>();
  }
  const bool per_channel = scale_dims->size() == 1;
  int axis = 0;
  if (per_channel) {
    axis = 1;  // QuantizeLinear's default
    for (const onnx::AttributeProto& attr : q.attribute()) {
      if (attr.name() == "axis") axis = static_cast<int>(attr.i());
    }
    if (axis < 0) axis += weight->dims_size();
    if (axis < 0 || axis >= weight->dims_size() || weight->dims(axis) != (*scale_dims)[0]) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(pair), ": axis ", axis, " of a ", (*scale_dims)[0],
          "-value scale does not fit weight dims [", absl::StrJoin(weight->dims(), ", "), "]"));
    }
  }
  absl::StatusOr<std::vector<float>> amax = PerChannelAbsMax(*weight, axis);
  if (!amax.ok()) return Prefixed(pair, amax.status());
  if (amax->empty()) {
    *why_not = absl::StrCat("weight '", pair.tensor, "' has no elements");
    return std::optional<Written>();
  }
  if (!per_channel) *amax = {*std::max_element(amax->begin(), amax->end())};
  const absl::StatusOr<float> bound = kernels::QuantBound(num_bits, is_unsigned);
  if (!bound.ok()) return Prefixed(pair, bound.status());
  const std::optional<int> written_axis = per_channel ? std::optional<int>(axis) : std::nullopt;
  absl::StatusOr<std::vector<float>> scale =
      ScalesFromAmax(*amax, *bound, {pair.quantizer, pair.tensor, written_axis}, warnings);
  if (!scale.ok()) return Prefixed(pair, scale.status());
  return std::optional<Written>(
      Written{.scale = *std::move(scale), .axis = written_axis, .is_unsigned = is_unsigned});
}

onnx::TensorProto ScaleInitializer(const std::string& name, const Written& w) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  if (w.axis) t.add_dims(static_cast<int64_t>(w.scale.size()));
  for (float s : w.scale) t.add_float_data(s);
  return t;
}

onnx::TensorProto ZeroPointInitializer(const std::string& name, const Written& w) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(w.is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8);
  if (w.axis) t.add_dims(static_cast<int64_t>(w.scale.size()));
  t.set_raw_data(std::string(w.scale.size(), '\0'));
  return t;
}

// Points a Q or DQ node at the new scale and zero point, with the axis attribute of `w`.
void Repoint(onnx::NodeProto* node, const std::string& scale, const std::string& zero_point,
             const Written& w, std::set<std::string>* detached) {
  detached->insert(node->input(1));
  node->set_input(1, scale);
  if (node->input_size() > 2) {
    detached->insert(node->input(2));
    node->set_input(2, zero_point);
  } else {
    node->add_input(zero_point);
  }
  auto* attrs = node->mutable_attribute();
  attrs->erase(std::remove_if(attrs->begin(), attrs->end(),
                              [](const onnx::AttributeProto& a) { return a.name() == "axis"; }),
               attrs->end());
  if (w.axis) {
    onnx::AttributeProto* attr = node->add_attribute();
    attr->set_name("axis");
    attr->set_type(onnx::AttributeProto::INT);
    attr->set_i(*w.axis);
  }
}

// Every tensor a node of `graph` or of its subgraphs reads (subgraphs see outer names).
void ReadTensors(const onnx::GraphProto& graph, std::set<std::string>* read) {
  for (const onnx::NodeProto& node : graph.node()) {
    read->insert(node.input().begin(), node.input().end());
    for (const onnx::AttributeProto& attr : node.attribute()) {
      if (attr.has_g()) ReadTensors(attr.g(), read);
      for (const onnx::GraphProto& g : attr.graphs()) ReadTensors(g, read);
    }
  }
}

// Removes the old scales and zero points that nothing reads any more: their initializers (and
// graph inputs of the same name, IR < 4) or Constant nodes. Graph outputs stay.
void RemoveDetached(const std::set<std::string>& detached, onnx::GraphProto* graph) {
  std::set<std::string> read;
  ReadTensors(*graph, &read);
  for (const onnx::ValueInfoProto& out : graph->output()) read.insert(out.name());
  auto unread = [&](const std::string& name) {
    return detached.contains(name) && !read.contains(name);
  };
  auto* inits = graph->mutable_initializer();
  inits->erase(std::remove_if(inits->begin(), inits->end(),
                              [&](const onnx::TensorProto& t) { return unread(t.name()); }),
               inits->end());
  auto* inputs = graph->mutable_input();
  inputs->erase(std::remove_if(inputs->begin(), inputs->end(),
                               [&](const onnx::ValueInfoProto& v) { return unread(v.name()); }),
                inputs->end());
  auto* nodes = graph->mutable_node();
  nodes->erase(std::remove_if(nodes->begin(), nodes->end(),
                              [&](const onnx::NodeProto& n) {
                                return IsOp(n, "Constant") && n.output_size() == 1 &&
                                       unread(n.output(0));
                              }),
               nodes->end());
}

}  // namespace

absl::StatusOr<ExistingQdq> RewriteExistingQdq(const onnx::ModelProto& model,
                                               const AmaxTable& table, const QdqOptions& options) {
  if (absl::Status s = CheckMaxOpset(model); !s.ok()) return s;
  if (absl::Status s = CheckMinOpset(model); !s.ok()) return s;
  const onnx::GraphProto& graph = model.graph();
  const GraphIndex index(graph);
  std::vector<Found> found = FindPairs(graph, index);

  ExistingQdq result;
  GraphNames names(graph);
  std::set<std::string> detached;
  std::set<std::string> unsigned_warned;
  onnx::GraphProto* out = nullptr;  // the copy, made at the first rewrite only
  for (Found& f : found) {
    ExistingPair& pair = f.pair;
    pair.is_weight = index.ConstantTensor(pair.tensor) != nullptr;
    std::optional<Written> written;
    std::string via;
    if (f.q >= 0 && pair.reason.empty() &&
        ChooseQuantizer(graph, index, table, options, f, &pair, &via)) {
      const auto entry = table.quantizers.find(pair.quantizer);
      const bool fp8 =
          entry != table.quantizers.end() && entry->second.format == kernels::QuantFormat::kFp8E4M3;
      if (fp8) {
        pair.reason = absl::StrCat("quantizer '", pair.quantizer,
                                   "' is FP8 E4M3; an existing INT8 pair is not turned into FP8");
      } else if (pair.is_weight) {
        const bool has_entry = entry != table.quantizers.end();
        const bool is_unsigned = WrittenUnsigned(
            pair.quantizer, has_entry ? entry->second.is_unsigned : options.default_weight_unsigned,
            options.target, &unsigned_warned, &result.warnings);
        absl::StatusOr<std::optional<Written>> w =
            WeightScale(graph.node(f.q), index, pair,
                        has_entry ? entry->second.num_bits : options.default_weight_num_bits,
                        is_unsigned, &result.warnings, &pair.reason);
        if (!w.ok()) return w.status();
        written = *std::move(w);
        if (written) {
          pair.reason =
              absl::StrCat("found by ", via, "; scale = max |w| of '", pair.tensor, "'",
                           written->axis ? absl::StrCat(" per channel on axis ", *written->axis)
                                         : std::string(" per tensor"),
                           " / bound");
        }
      } else {
        const bool is_unsigned =
            WrittenUnsigned(pair.quantizer, entry->second.is_unsigned, options.target,
                            &unsigned_warned, &result.warnings);
        absl::StatusOr<Written> w =
            ActivationScale(pair, entry->second, is_unsigned, &result.warnings);
        if (!w.ok()) return w.status();
        written = *std::move(w);
        pair.reason = absl::StrCat("found by ", via, "; scale = amax ", entry->second.amax[0],
                                   " / bound from the table");
      }
    }
    if (!written) {
      pair.decision = ExistingDecision::kKept;
      result.warnings.push_back(
          absl::StrCat("existing Q/DQ pair ", PairName(pair), " on tensor '", pair.tensor, "'",
                       pair.quantizer.empty() ? std::string()
                                              : absl::StrCat(" (quantizer '", pair.quantizer, "')"),
                       " kept as it is: ", pair.reason));
      result.pairs.push_back(std::move(pair));
      continue;
    }
    if (out == nullptr) {
      result.model = model;
      out = result.model.mutable_graph();
    }
    const std::string scale = names.Unique(pair.quantizer + "/scale");
    const std::string zero_point = names.Unique(pair.quantizer + "/zero_point");
    *out->add_initializer() = ScaleInitializer(scale, *written);
    *out->add_initializer() = ZeroPointInitializer(zero_point, *written);
    Repoint(out->mutable_node(f.q), scale, zero_point, *written, &detached);
    for (int dq : f.dq) Repoint(out->mutable_node(dq), scale, zero_point, *written, &detached);
    pair.decision = ExistingDecision::kRewritten;
    pair.scale = written->scale;
    pair.axis = written->axis;
    ++result.rewritten;
    result.pairs.push_back(std::move(pair));
  }
  if (out != nullptr) RemoveDetached(detached, out);
  return result;
}

}  // namespace qcal::server
