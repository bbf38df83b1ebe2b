#include "server/onnx/quantizer_binding.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/onnx/residual_add.h"
#include "server/onnx/torch_onnx_names.h"

namespace qcal::server {
namespace {

// The input slot a quantizer of this kind reads on `node`: data input 0, weight input 1, the
// shortcut of a residual Add; -1 when the node has none for it.
int SlotOf(QuantizerKind kind, const onnx::GraphProto& graph, const GraphEdges& edges, int i) {
  if (!KindBindsTo(kind, graph.node(i))) return -1;
  switch (kind) {
    case QuantizerKind::kInput:
      return 0;
    case QuantizerKind::kWeight:
      return 1;
    case QuantizerKind::kResidual: {
      const ResidualAdd r = ClassifyResidualAdd(graph, edges, i);
      return r.kind == ResidualAdd::kResidual ? r.shortcut_slot : -1;
    }
  }
  return -1;
}

const char* SlotName(QuantizerKind kind) {
  switch (kind) {
    case QuantizerKind::kInput:
      return "data input (input 0) of any Conv, ConvTranspose, Gemm, MatMul, MaxPool, "
             "AveragePool or GlobalAveragePool node";
    case QuantizerKind::kWeight:
      return "weight (input 1) of any Conv, ConvTranspose, Gemm or MatMul node";
    case QuantizerKind::kResidual:
      return "input of any two-input Add node";
  }
  return "";
}

// Every tensor name the main graph defines or reads.
std::set<std::string> TensorNames(const onnx::GraphProto& graph) {
  std::set<std::string> names;
  for (const auto& input : graph.input()) names.insert(input.name());
  for (const auto& init : graph.initializer()) names.insert(init.name());
  for (const auto& node : graph.node()) {
    names.insert(node.input().begin(), node.input().end());
    names.insert(node.output().begin(), node.output().end());
  }
  names.erase("");  // an omitted optional input
  return names;
}

}  // namespace

absl::StatusOr<std::map<std::string, QuantizerBinding>> BindQuantizers(
    const onnx::ModelProto& model, const std::vector<std::string>& quantizers,
    const std::map<std::string, std::string>& explicit_pairs) {
  const onnx::GraphProto& graph = model.graph();
  const GraphEdges edges(graph);
  const std::set<std::string> known(quantizers.begin(), quantizers.end());
  std::map<std::string, QuantizerBinding> bindings;
  // (node index, input slot) -> the explicit quantizer that owns it.
  std::map<std::pair<int, int>, std::string> claimed;

  if (!explicit_pairs.empty()) {
    const std::set<std::string> tensors = TensorNames(graph);
    for (const auto& [quantizer, tensor] : explicit_pairs) {
      const std::string pair = absl::StrCat("explicit pair '", quantizer, "' -> '", tensor, "'");
      if (!known.contains(quantizer)) {
        return absl::InvalidArgumentError(
            absl::StrCat(pair, ": the model has no quantizer '", quantizer, "'"));
      }
      const std::optional<QuantizerName> parsed = ParseQuantizerName(quantizer);
      if (!parsed) {
        return absl::InvalidArgumentError(
            absl::StrCat(pair, ": '", quantizer,
                         "' is none of _input_quantizer, _weight_quantizer, residual_quantizer"));
      }
      if (!tensors.contains(tensor)) {
        return absl::InvalidArgumentError(
            absl::StrCat(pair, ": the ONNX graph has no tensor '", tensor, "'"));
      }
      QuantizerBinding binding{
          .quantizer = quantizer, .nodes = {}, .slots = {}, .tensor = tensor, .tensors = {tensor}};
      for (int i = 0; i < graph.node_size(); ++i) {
        const onnx::NodeProto& node = graph.node(i);
        if (!KindBindsTo(parsed->kind, node)) continue;
        for (int slot : parsed->kind == QuantizerKind::kInput    ? std::vector<int>{0}
                        : parsed->kind == QuantizerKind::kWeight ? std::vector<int>{1}
                                                                 : std::vector<int>{0, 1}) {
          if (node.input(slot) != tensor) continue;
          auto [it, inserted] = claimed.emplace(std::pair{i, slot}, quantizer);
          if (!inserted) {
            return absl::InvalidArgumentError(
                absl::StrCat(pair, ": node '", node.name(), "' input ", slot,
                             " is already bound to '", it->second, "' by another explicit pair"));
          }
          binding.nodes.push_back(i);
          binding.slots.push_back(slot);
          break;
        }
      }
      if (binding.nodes.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(pair, ": '", tensor, "' is not the ", SlotName(parsed->kind)));
      }
      bindings.emplace(quantizer, std::move(binding));
    }
  }

  // module -> its quantizers (an input and/or a weight quantizer) that no explicit pair owns.
  std::map<std::string, std::vector<std::pair<std::string, QuantizerName>>> by_module;
  for (const std::string& quantizer : known) {
    if (explicit_pairs.contains(quantizer)) continue;
    if (std::optional<QuantizerName> parsed = ParseQuantizerName(quantizer)) {
      by_module[parsed->module].emplace_back(quantizer, *parsed);
    }
  }
  const std::map<int, int> residual_rank = ResidualAddRanks(graph, edges);
  std::set<std::string> automatic;
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    if (!IsQuantizableNode(node) && !IsPoolingNode(node) && !IsTwoInputAdd(node)) continue;
    for (const std::string& module : CandidateModules(node)) {
      auto found = by_module.find(module);
      if (found == by_module.end()) continue;
      for (const auto& [quantizer, parsed] : found->second) {
        if (parsed.kind == QuantizerKind::kResidual) {
          const auto rank = residual_rank.find(i);
          if (rank == residual_rank.end() || rank->second != parsed.index) continue;
        }
        const int slot = SlotOf(parsed.kind, graph, edges, i);
        if (slot < 0 || claimed.contains({i, slot})) continue;
        QuantizerBinding& binding = bindings[quantizer];
        binding.quantizer = quantizer;
        binding.nodes.push_back(i);
        binding.slots.push_back(slot);
        automatic.insert(quantizer);
      }
      break;
    }
  }
  for (const std::string& quantizer : automatic) {
    QuantizerBinding& binding = bindings.at(quantizer);
    for (size_t k = 0; k < binding.nodes.size(); ++k) {
      const std::string& tensor = graph.node(binding.nodes[k]).input(binding.slots[k]);
      if (std::find(binding.tensors.begin(), binding.tensors.end(), tensor) ==
          binding.tensors.end()) {
        binding.tensors.push_back(tensor);
      }
    }
    binding.tensor = binding.tensors.front();
  }
  return bindings;
}

std::map<std::string, std::vector<std::string>> ActivationTensorQuantizers(
    const std::map<std::string, QuantizerBinding>& bindings) {
  std::map<std::string, std::vector<std::string>> by_tensor;
  for (const auto& [quantizer, binding] : bindings) {
    const std::optional<QuantizerName> parsed = ParseQuantizerName(quantizer);
    if (!parsed || parsed->kind == QuantizerKind::kWeight) continue;
    for (const std::string& tensor : binding.tensors) by_tensor[tensor].push_back(quantizer);
  }
  return by_tensor;
}

}  // namespace qcal::server
