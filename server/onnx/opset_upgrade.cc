#include "server/onnx/opset_upgrade.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "onnx/defs/schema.h"
#include "server/onnx/onnx_model.h"

namespace qcal::server {
namespace {

// Default-domain ops that gained a version at 18 or 19, as ONNX's docs/Changelog.md lists them
// ("Version 18/19 of the default ONNX operator set"). The linked ONNX 1.12 registry stops at 17,
// so these two lists stand in for it. Ops new at 18/19 (BitwiseAnd, CenterCropPad, Col2Im,
// DeformConv, GroupNormalization, Mish, ...) are left out: no model of opset <= 17 has them.
const std::set<std::string>& ChangedAt18() {
  static const auto* ops = new std::set<std::string>{"LpPool",
                                                     "OptionalGetElement",
                                                     "OptionalHasElement",
                                                     "Pad",
                                                     "ReduceL1",
                                                     "ReduceL2",
                                                     "ReduceLogSum",
                                                     "ReduceLogSumExp",
                                                     "ReduceMax",
                                                     "ReduceMean",
                                                     "ReduceMin",
                                                     "ReduceProd",
                                                     "ReduceSumSquare",
                                                     "Resize",
                                                     "ScatterElements",
                                                     "ScatterND",
                                                     "Split"};
  return *ops;
}

const std::set<std::string>& ChangedAt19() {
  static const auto* ops = new std::set<std::string>{
      "AveragePool", "Cast", "CastLike", "Constant", "DequantizeLinear", "Equal",
      "Identity",    "If",   "Loop",     "Pad",      "QuantizeLinear",   "Reshape",
      "Resize",      "Scan", "Shape",    "Size"};
  return *ops;
}

// The checked list: (op, version) changes after which a node valid at the older version computes
// the same thing. Every entry is a new input type or a new attribute / optional input whose
// default is the old behaviour (ONNX docs/Changelog.md, each op's "-N" section).
const std::map<std::string, std::set<int64_t>>& CheckedChanges() {
  static const auto* checked = new std::map<std::string, std::set<int64_t>>{
      // 14: int8/uint8/int16/uint16 inputs added.
      {"Add", {14}},
      {"Sub", {14}},
      {"Mul", {14}},
      {"Div", {14}},
      // 14: signed integer inputs added.
      {"Relu", {14}},
      {"CumSum", {14}},
      // 14: allowzero, default 0 (the old rule: 0 copies the input dim); 19: types.
      {"Reshape", {14, 19}},
      // 14: sequence types; 16: optional types; 19: float8 types.
      {"Identity", {14, 16, 19}},
      // 14: training_mode, default 0; 15: scale/bias may differ in type from X. Inference nodes
      // only (one output), see UpgradeRefusal.
      {"BatchNormalization", {14, 15}},
      // 14: layout, default 0 (the old layout).
      {"GRU", {14}},
      {"LSTM", {14}},
      {"RNN", {14}},
      // 15: bfloat16.
      {"Pow", {15}},
      // 15: start/end, default the whole shape; 19: float8 types.
      {"Shape", {15, 19}},
      // 16: bfloat16 (PRelu also integers).
      {"LeakyRelu", {16}},
      {"PRelu", {16}},
      {"Where", {16}},
      {"GreaterOrEqual", {16}},
      {"LessOrEqual", {16}},
      // 16: optional types; 19: float8 types. Their subgraphs are checked node by node.
      {"If", {16, 19}},
      {"Loop", {16, 19}},
      {"Scan", {16, 19}},
      // 16: reduction, default "none" (the old behaviour); 18: reduction "max"/"min" added.
      {"ScatterElements", {16, 18}},
      {"ScatterND", {16, 18}},
      // 18: optional `axes` input, absent = all axes (the old behaviour); 19: mode "wrap" added.
      {"Pad", {18, 19}},
      // 18: ceil_mode (default 0) and dilations (default 1), the old behaviour.
      {"LpPool", {18}},
      // 19: dilations, default 1 (the old behaviour).
      {"AveragePool", {19}},
      // 19: float8 types, and `saturate`, which only affects float8 outputs.
      {"Cast", {19}},
      {"CastLike", {19}},
      {"QuantizeLinear", {19}},
      // 19: float8 types.
      {"DequantizeLinear", {19}},
      {"Constant", {19}},
      {"Size", {19}},
      // 19: string inputs.
      {"Equal", {19}},
  };
  return *checked;
}

// Why a known change is not on the checked list, for the refusal message.
std::string ChangeReason(const std::string& op, int64_t version) {
  if (version == 18 && op.rfind("Reduce", 0) == 0) {
    return "its axes moved from an attribute to an input";
  }
  if (op == "Split" && version == 18) {
    return "a Split without the `split` input needs the new num_outputs attribute";
  }
  if (op == "Resize") return "new attributes and coordinate modes, not verified as equivalent";
  if (op == "RoiAlign") return "the default coordinate_transformation_mode changed";
  if (op == "BatchNormalization") return "its training-mode outputs changed";
  return "its schema changed and that change is not on qcal's checked list";
}

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

// The versions op gained in (from, to], ascending; nullopt-like empty vector plus `*unknown` when
// the op has no schema at `from`.
std::vector<int64_t> VersionsAfter(const std::string& op, int64_t from, int64_t to, bool* unknown) {
  std::set<int64_t> versions;
  const onnx::OpSchema* at_from = onnx::OpSchemaRegistry::Schema(op, static_cast<int>(from));
  *unknown = at_from == nullptr;
  if (*unknown) return {};
  for (const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema(op, static_cast<int>(to));
       s != nullptr && s->SinceVersion() > from;
       s = onnx::OpSchemaRegistry::Schema(op, s->SinceVersion() - 1)) {
    versions.insert(s->SinceVersion());
  }
  if (from < 18 && to >= 18 && ChangedAt18().contains(op)) versions.insert(18);
  if (from < 19 && to >= 19 && ChangedAt19().contains(op)) versions.insert(19);
  return {versions.begin(), versions.end()};
}

absl::Status CheckNode(const onnx::NodeProto& node, int64_t from, int64_t to,
                       const std::string& where);

absl::Status CheckGraph(const onnx::GraphProto& graph, int64_t from, int64_t to,
                        const std::string& where) {
  for (const onnx::NodeProto& node : graph.node()) {
    if (absl::Status s = CheckNode(node, from, to, where); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckNode(const onnx::NodeProto& node, int64_t from, int64_t to,
                       const std::string& where) {
  for (const onnx::AttributeProto& attr : node.attribute()) {
    const std::string inner =
        absl::StrCat(where, " > ", node.op_type(), " '", node.name(), "'.", attr.name());
    if (attr.has_g()) {
      if (absl::Status s = CheckGraph(attr.g(), from, to, inner); !s.ok()) return s;
    }
    for (const onnx::GraphProto& g : attr.graphs()) {
      if (absl::Status s = CheckGraph(g, from, to, inner); !s.ok()) return s;
    }
  }
  if (!IsDefaultDomain(node.domain())) return absl::OkStatus();
  const std::string& op = node.op_type();
  const std::string subject =
      absl::StrCat(where, " node '", node.name(), "' (", op, ", default-domain opset ", from, ")");
  bool unknown = false;
  const std::vector<int64_t> versions = VersionsAfter(op, from, to, &unknown);
  if (unknown) {
    return absl::InvalidArgumentError(absl::StrCat(subject, ": no such op at opset ", from,
                                                   "; the FP8 export cannot raise the opset to ",
                                                   to));
  }
  const auto checked = CheckedChanges().find(op);
  for (int64_t v : versions) {
    const bool ok = checked != CheckedChanges().end() && checked->second.contains(v) &&
                    !(op == "BatchNormalization" && node.output_size() > 1);
    if (ok) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        subject, " changed at opset ", v, " (", ChangeReason(op, v),
        "); FP8 QuantizeLinear/DequantizeLinear need opset ", to,
        ", and qcal raises the opset only when every op means the same there. Remove the op, "
        "use TensorRT's custom FP8 ops (qcal export --fp8-ops trt), or use INT8 quantizers"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckOpsetUpgrade(const onnx::ModelProto& model, int64_t to) {
  const int64_t from = DefaultOpset(model);
  if (to != kFp8Opset) {
    return absl::InvalidArgumentError(absl::StrCat("opset upgrade to ", to, ": only ", kFp8Opset,
                                                   " is supported (the checked op list)"));
  }
  if (from > to) {
    return absl::InvalidArgumentError(absl::StrCat("model '", model.graph().name(),
                                                   "' has default-domain opset ", from,
                                                   ", above the target ", to));
  }
  if (absl::Status s = CheckMinOpset(model); !s.ok()) return s;
  const std::string where = absl::StrCat("graph '", model.graph().name(), "'");
  if (absl::Status s = CheckGraph(model.graph(), from, to, where); !s.ok()) return s;
  for (const onnx::FunctionProto& f : model.functions()) {
    for (const onnx::NodeProto& node : f.node()) {
      if (absl::Status s = CheckNode(node, from, to, absl::StrCat("function '", f.name(), "'"));
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status RaiseOpset(onnx::ModelProto* model, int64_t to) {
  if (absl::Status s = CheckOpsetUpgrade(*model, to); !s.ok()) return s;
  for (onnx::OperatorSetIdProto& opset : *model->mutable_opset_import()) {
    if (IsDefaultDomain(opset.domain())) opset.set_version(to);
  }
  if (model->ir_version() < kFp8IrVersion) model->set_ir_version(kFp8IrVersion);
  return absl::OkStatus();
}

}  // namespace qcal::server
