// The structural part of onnx::checker, for models that ONNX 1.12's checker cannot read (opset
// 19 and IR version 9, after the FP8 export's opset upgrade): what it can still say without
// schemas.
//   - every tensor is produced once: graph inputs, initializers and node outputs have distinct,
//     non-empty names (an empty node output name, an unused optional output, is allowed);
//   - the nodes are topologically sorted: each non-empty node input is a graph input, an
//     initializer, an earlier node's output, or (in a subgraph) a name of an enclosing scope;
//   - every graph output is produced.
// Op schemas, attribute types, tensor types and shapes are not checked; ONNX Runtime, which
// knows opset 19, checks those when it loads the model (server/onnx/fp8_ort_test.cc).
#ifndef QCAL_SERVER_ONNX_GRAPH_ORDER_H_
#define QCAL_SERVER_ONNX_GRAPH_ORDER_H_

#include "absl/status/status.h"
#include "onnx/onnx_pb.h"

namespace qcal::server {

// Errors: INVALID_ARGUMENT naming the graph, node and tensor that break a rule above.
absl::Status CheckGraphOrder(const onnx::GraphProto& graph);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_GRAPH_ORDER_H_
