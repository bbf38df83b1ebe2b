#include "server/onnx/graph_names.h"

#include "absl/strings/str_cat.h"

namespace qcal::server {

GraphNames::GraphNames(const onnx::GraphProto& graph) { AddGraph(graph); }

std::string GraphNames::Unique(absl::string_view base) {
  std::string name(base);
  for (int n = 1; used_.contains(name); ++n) name = absl::StrCat(base, "_", n);
  used_.insert(name);
  return name;
}

bool GraphNames::Contains(absl::string_view name) const {
  return used_.contains(std::string(name));
}

void GraphNames::AddGraph(const onnx::GraphProto& graph) {
  for (const auto& v : graph.input()) used_.insert(v.name());
  for (const auto& v : graph.output()) used_.insert(v.name());
  for (const auto& v : graph.value_info()) used_.insert(v.name());
  for (const auto& t : graph.initializer()) used_.insert(t.name());
  for (const auto& t : graph.sparse_initializer()) used_.insert(t.values().name());
  for (const auto& node : graph.node()) {
    used_.insert(node.name());
    used_.insert(node.input().begin(), node.input().end());
    used_.insert(node.output().begin(), node.output().end());
    for (const auto& attr : node.attribute()) {
      if (attr.has_g()) AddGraph(attr.g());
      for (const auto& g : attr.graphs()) AddGraph(g);
    }
  }
}

}  // namespace qcal::server
