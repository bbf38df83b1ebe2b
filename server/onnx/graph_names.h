// Fresh node and tensor names for a graph being rewritten: a new name never equals any name the
// graph already uses, in any namespace (nodes, tensors, initializers, graph inputs/outputs,
// value_info), including those of subgraphs (If/Loop/Scan bodies see the outer names).
//
//   GraphNames names(model.graph());
//   std::string q = names.Unique("conv1._input_quantizer/QuantizeLinear");
#ifndef QCAL_SERVER_ONNX_GRAPH_NAMES_H_
#define QCAL_SERVER_ONNX_GRAPH_NAMES_H_

#include <string>
#include <unordered_set>

#include "absl/strings/string_view.h"
#include "onnx/onnx_pb.h"

namespace qcal::server {

class GraphNames {
 public:
  explicit GraphNames(const onnx::GraphProto& graph);

  // `base` if no name equals it yet, else the first free of base_1, base_2, ...; the name
  // returned is taken from then on.
  std::string Unique(absl::string_view base);

  bool Contains(absl::string_view name) const;

 private:
  void AddGraph(const onnx::GraphProto& graph);

  std::unordered_set<std::string> used_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_GRAPH_NAMES_H_
