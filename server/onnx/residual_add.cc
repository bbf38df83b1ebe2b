#include "server/onnx/residual_add.h"

#include <algorithm>
#include <deque>
#include <limits>

#include "absl/strings/str_cat.h"
#include "server/onnx/torch_onnx_names.h"

namespace qcal::server {
namespace {

bool IsDefaultDomain(const onnx::NodeProto& node) {
  return node.domain().empty() || node.domain() == "ai.onnx";
}

// The Conv/ConvTranspose whose output `tensor` is (directly or through one BatchNormalization)
// when this Add is that output's only reader; -1 otherwise.
int ConvSideProducer(const onnx::GraphProto& graph, const GraphEdges& edges,
                     const std::string& tensor) {
  std::string t = tensor;
  for (int hop = 0; hop < 2; ++hop) {
    const auto p = edges.producer.find(t);
    if (p == edges.producer.end()) return -1;
    const auto r = edges.readers.find(t);
    if (r == edges.readers.end() || r->second != 1) return -1;
    const onnx::NodeProto& node = graph.node(p->second);
    if (!IsDefaultDomain(node)) return -1;
    if (node.op_type() == "Conv" || node.op_type() == "ConvTranspose") return p->second;
    if (hop > 0 || node.op_type() != "BatchNormalization" || node.input_size() < 1) return -1;
    t = node.input(0);
  }
  return -1;
}

// Backward distance, in nodes, from `tensor` to every tensor it depends on (constants left out).
std::map<std::string, int> Ancestors(const onnx::GraphProto& graph, const GraphEdges& edges,
                                     const std::string& tensor) {
  std::map<std::string, int> dist{{tensor, 0}};
  std::deque<std::string> queue{tensor};
  while (!queue.empty()) {
    const std::string t = queue.front();
    queue.pop_front();
    const auto p = edges.producer.find(t);
    if (p == edges.producer.end()) continue;
    for (const std::string& in : graph.node(p->second).input()) {
      if (in.empty() || edges.constants.contains(in) || dist.contains(in)) continue;
      dist[in] = dist[t] + 1;
      queue.push_back(in);
    }
  }
  return dist;
}

}  // namespace

GraphEdges::GraphEdges(const onnx::GraphProto& graph) {
  for (const auto& init : graph.initializer()) constants.insert(init.name());
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    for (const std::string& in : node.input()) {
      if (!in.empty()) ++readers[in];
    }
    for (const std::string& out : node.output()) {
      producer[out] = i;
      if (node.op_type() == "Constant") constants.insert(out);
    }
  }
}

ResidualAdd ClassifyResidualAdd(const onnx::GraphProto& graph, const GraphEdges& edges,
                                int add_index) {
  const onnx::NodeProto& add = graph.node(add_index);
  ResidualAdd r;
  for (int slot = 0; slot < 2; ++slot) {
    if (edges.constants.contains(add.input(slot))) {
      r.kind = ResidualAdd::kConstant;
      r.reason = absl::StrCat("input ", slot, " is a constant (a bias add)");
      return r;
    }
  }
  const int conv[2] = {ConvSideProducer(graph, edges, add.input(0)),
                       ConvSideProducer(graph, edges, add.input(1))};
  if (conv[0] < 0 && conv[1] < 0) {
    r.reason =
        "not a residual add: neither input is the output of a Conv/ConvTranspose that only this "
        "Add reads, so there is no conv epilogue to fuse into";
    return r;
  }
  if (conv[0] < 0 || conv[1] < 0) {
    const int side = conv[0] >= 0 ? 0 : 1;
    r.kind = ResidualAdd::kResidual;
    r.shortcut_slot = 1 - side;
    r.conv_node = conv[side];
    r.reason = absl::StrCat("input ", side, " comes from ", graph.node(conv[side]).op_type(), " '",
                            graph.node(conv[side]).name(), "', input ", 1 - side, " does not");
    return r;
  }
  const std::map<std::string, int> a = Ancestors(graph, edges, add.input(0));
  const std::map<std::string, int> b = Ancestors(graph, edges, add.input(1));
  std::string lca;
  int best = std::numeric_limits<int>::max();
  for (const auto& [tensor, da] : a) {
    const auto db = b.find(tensor);
    if (db != b.end() && da + db->second < best) {
      best = da + db->second;
      lca = tensor;
    }
  }
  if (lca.empty()) {
    r.reason = "not a residual add: both inputs come from convs with no common ancestor";
    return r;
  }
  const int d0 = a.at(lca), d1 = b.at(lca);
  if (d0 == d1) {
    r.reason =
        absl::StrCat("not a residual add: both inputs come from convs ", d0,
                     " nodes after their common ancestor '", lca, "'; the shortcut is ambiguous");
    return r;
  }
  r.kind = ResidualAdd::kResidual;
  r.shortcut_slot = d0 < d1 ? 0 : 1;
  r.conv_node = conv[1 - r.shortcut_slot];
  r.reason = absl::StrCat("both inputs come from convs; input ", r.shortcut_slot,
                          " has the shorter path to their common ancestor '", lca, "' (",
                          std::min(d0, d1), " vs ", std::max(d0, d1), " nodes)");
  return r;
}

std::map<int, int> ResidualAddRanks(const onnx::GraphProto& graph, const GraphEdges& edges) {
  std::map<int, int> ranks;
  std::map<std::string, int> seen;  // block -> residual adds so far
  for (int i = 0; i < graph.node_size(); ++i) {
    if (!IsTwoInputAdd(graph.node(i))) continue;
    const std::vector<std::string> modules = CandidateModules(graph.node(i));
    if (modules.empty()) continue;
    if (ClassifyResidualAdd(graph, edges, i).kind != ResidualAdd::kResidual) continue;
    ranks[i] = seen[modules.front()]++;
  }
  return ranks;
}

}  // namespace qcal::server
