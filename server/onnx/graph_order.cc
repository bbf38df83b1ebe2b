#include "server/onnx/graph_order.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"

namespace qcal::server {
namespace {

absl::Status Define(const std::string& graph, const std::string& what, const std::string& name,
                    std::set<std::string>* defined) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("graph '", graph, "': ", what, " has no name"));
  }
  if (!defined->insert(name).second) {
    return absl::InvalidArgumentError(
        absl::StrCat("graph '", graph, "': tensor '", name, "' is defined twice (", what, ")"));
  }
  return absl::OkStatus();
}

// `outer`: names visible from enclosing graphs.
absl::Status CheckScope(const onnx::GraphProto& graph, const std::set<std::string>& outer) {
  std::set<std::string> defined;
  for (const onnx::ValueInfoProto& input : graph.input()) {
    // An initializer may also be listed as an input (IR < 4 style); define it once.
    if (absl::Status s = Define(graph.name(), "a graph input", input.name(), &defined); !s.ok()) {
      return s;
    }
  }
  for (const onnx::TensorProto& init : graph.initializer()) {
    if (defined.contains(init.name())) continue;
    if (absl::Status s = Define(graph.name(), "an initializer", init.name(), &defined); !s.ok()) {
      return s;
    }
  }
  const auto visible = [&](const std::string& name) {
    return defined.contains(name) || outer.contains(name);
  };
  for (const onnx::NodeProto& node : graph.node()) {
    const std::string what = absl::StrCat(node.op_type(), " node '", node.name(), "'");
    for (const std::string& input : node.input()) {
      if (input.empty() || visible(input)) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          "graph '", graph.name(), "': ", what, " reads tensor '", input,
          "' before it is produced (not topologically sorted) or it is never produced"));
    }
    for (const onnx::AttributeProto& attr : node.attribute()) {
      std::set<std::string> inner = outer;
      inner.insert(defined.begin(), defined.end());
      if (attr.has_g()) {
        if (absl::Status s = CheckScope(attr.g(), inner); !s.ok()) return s;
      }
      for (const onnx::GraphProto& g : attr.graphs()) {
        if (absl::Status s = CheckScope(g, inner); !s.ok()) return s;
      }
    }
    for (const std::string& output : node.output()) {
      if (output.empty()) continue;
      if (absl::Status s =
              Define(graph.name(), absl::StrCat("an output of ", what), output, &defined);
          !s.ok()) {
        return s;
      }
    }
  }
  for (const onnx::ValueInfoProto& output : graph.output()) {
    if (visible(output.name())) continue;
    return absl::InvalidArgumentError(absl::StrCat("graph '", graph.name(), "': graph output '",
                                                   output.name(), "' is never produced"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckGraphOrder(const onnx::GraphProto& graph) { return CheckScope(graph, {}); }

}  // namespace qcal::server
