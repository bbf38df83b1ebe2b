#include "server/onnx/torch_onnx_names.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace qcal::server {
namespace {

constexpr absl::string_view kInputSuffix = "_input_quantizer";
constexpr absl::string_view kWeightSuffix = "_weight_quantizer";
constexpr absl::string_view kResidualSuffix = "residual_quantizer";

bool IsDefaultDomain(const onnx::NodeProto& node) {
  return node.domain().empty() || node.domain() == "ai.onnx";
}

bool IsNumber(absl::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

// "seq.1_2" -> "seq.1": torch.onnx's suffix for a module's repeated call.
absl::string_view StripCallSuffix(absl::string_view component) {
  const size_t underscore = component.rfind('_');
  if (underscore == absl::string_view::npos || underscore == 0) return component;
  if (!IsNumber(component.substr(underscore + 1))) return component;
  return component.substr(0, underscore);
}

// Appends scope component `c` (atoms c1..ck, c1 the last non-numeric atom of the module's
// qualified name) to the qualified name `path` of an enclosing module: the longest head of c
// that `path` already ends with is shared (c = "layer1.0" under "layer1" adds only "0").
void AppendComponent(std::vector<std::string>& path, absl::string_view c) {
  std::vector<absl::string_view> atoms = absl::StrSplit(c, '.');
  size_t shared = 0;
  for (size_t j = std::min(atoms.size() - 1, path.size()); j > 0; --j) {
    if (std::equal(atoms.begin(), atoms.begin() + j, path.end() - j)) {
      shared = j;
      break;
    }
  }
  for (size_t i = shared; i < atoms.size(); ++i) path.emplace_back(atoms[i]);
}

}  // namespace

std::optional<QuantizerName> ParseQuantizerName(absl::string_view name) {
  // "residual_quantizer_3": the fourth residual add of the block.
  if (const size_t u = name.rfind('_'); u != absl::string_view::npos &&
                                        IsNumber(name.substr(u + 1)) &&
                                        absl::EndsWith(name.substr(0, u), kResidualSuffix)) {
    std::optional<QuantizerName> base = ParseQuantizerName(name.substr(0, u));
    int index = 0;
    if (!base || base->kind != QuantizerKind::kResidual || name.size() - u > 6 ||
        !absl::SimpleAtoi(name.substr(u + 1), &index) || index == 0) {
      return std::nullopt;
    }
    base->index = index;
    return base;
  }
  for (auto [suffix, kind] : {std::pair{kInputSuffix, QuantizerKind::kInput},
                              std::pair{kWeightSuffix, QuantizerKind::kWeight},
                              std::pair{kResidualSuffix, QuantizerKind::kResidual}}) {
    if (!absl::EndsWith(name, suffix)) continue;
    absl::string_view module = name.substr(0, name.size() - suffix.size());
    if (module.empty()) return QuantizerName{"", kind};
    if (!absl::EndsWith(module, ".")) return std::nullopt;  // "foo_input_quantizer"
    module.remove_suffix(1);
    if (module.empty()) return std::nullopt;
    return QuantizerName{std::string(module), kind};
  }
  return std::nullopt;
}

std::string QuantizerNameOf(absl::string_view module, QuantizerKind kind, int index) {
  const absl::string_view suffix = kind == QuantizerKind::kInput    ? kInputSuffix
                                   : kind == QuantizerKind::kWeight ? kWeightSuffix
                                                                    : kResidualSuffix;
  const std::string numbered = kind == QuantizerKind::kResidual && index > 0
                                   ? absl::StrCat(suffix, "_", index)
                                   : std::string(suffix);
  if (module.empty()) return numbered;
  return absl::StrCat(module, ".", numbered);
}

std::optional<std::string> ModuleOfScope(absl::string_view node_name, bool strip_call_suffix) {
  if (!absl::StartsWith(node_name, "/")) return std::nullopt;
  std::vector<absl::string_view> components = absl::StrSplit(node_name.substr(1), '/');
  components.pop_back();  // the op: "Conv", "Gemm_1"
  std::vector<std::string> path;
  for (absl::string_view c : components) {
    if (c.empty()) return std::nullopt;
    AppendComponent(path, strip_call_suffix ? StripCallSuffix(c) : c);
  }
  return absl::StrJoin(path, ".");
}

std::optional<std::string> ModuleOfWeight(absl::string_view initializer_name) {
  constexpr absl::string_view kWeight = ".weight";
  if (!absl::EndsWith(initializer_name, kWeight) || initializer_name.size() == kWeight.size()) {
    return std::nullopt;
  }
  return std::string(initializer_name.substr(0, initializer_name.size() - kWeight.size()));
}

std::vector<std::string> CandidateModules(const onnx::NodeProto& node) {
  std::vector<std::string> candidates;
  if (std::optional<std::string> literal = ModuleOfScope(node.name(), false)) {
    candidates.push_back(*literal);
    std::optional<std::string> stripped = ModuleOfScope(node.name(), true);
    if (*stripped != *literal) candidates.push_back(*stripped);
    return candidates;
  }
  // A scope is torch.onnx's own record of the call; weight names only stand in without one,
  // since a tied weight ("embed.weight" used by lm_head) names the wrong module.
  if (IsQuantizableNode(node)) {
    if (std::optional<std::string> module = ModuleOfWeight(node.input(1))) {
      candidates.push_back(*module);
    }
  }
  return candidates;
}

bool IsQuantizableNode(const onnx::NodeProto& node) {
  if (!IsDefaultDomain(node)) return false;
  if (node.input_size() < 2) return false;
  const std::string& op = node.op_type();
  return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul";
}

bool IsPoolingNode(const onnx::NodeProto& node) {
  if (!IsDefaultDomain(node) || node.input_size() < 1) return false;
  const std::string& op = node.op_type();
  return op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool";
}

bool IsTwoInputAdd(const onnx::NodeProto& node) {
  return IsDefaultDomain(node) && node.op_type() == "Add" && node.input_size() == 2;
}

bool KindBindsTo(QuantizerKind kind, const onnx::NodeProto& node) {
  switch (kind) {
    case QuantizerKind::kInput:
      return IsQuantizableNode(node) || IsPoolingNode(node);
    case QuantizerKind::kWeight:
      return IsQuantizableNode(node);
    case QuantizerKind::kResidual:
      return IsTwoInputAdd(node);
  }
  return false;
}

}  // namespace qcal::server
