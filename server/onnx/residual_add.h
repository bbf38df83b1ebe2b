// Which input of a two-input Add is the shortcut (identity) of a residual block, and which is
// the conv side that TensorRT fuses into the convolution's epilogue.
//
// TensorRT developer guide, "Q/DQ layer-placement recommendations": quantize the residual input
// of an element-wise add that follows a weighted op, not the conv-side input (Conv + Add fuse,
// and the add runs in the conv's INT8 epilogue). Model Optimizer decides the same thing in
// modelopt/onnx/quantization/graph_utils.py build_non_residual_input_map; the rule here:
//   1. An input that is a constant (initializer or Constant node) makes it a bias add, not a
//      skip connection: kConstant (ModelOpt: has_const_input).
//   2. An input is conv-side when it is the output of a Conv or ConvTranspose (optionally through
//      one BatchNormalization, for a training-mode export) that only this Add reads. ModelOpt's
//      get_fusible_backbone walks any path back to a conv; requiring the conv output to have this
//      Add as its only reader is what TensorRT's fusion needs, and it rules out by construction
//      ModelOpt's "LCA is the backbone itself" case (ConvNeXt), which ModelOpt checks separately.
//   3. Exactly one conv-side input: the other one is the shortcut ("out += identity" and
//      "identity + out" alike, whatever the input order).
//   4. Both conv-side (a block with a downsample conv on the shortcut): the shortcut is the input
//      with the shorter backward path, counted in nodes, to the two inputs' lowest common
//      ancestor tensor (ModelOpt: find_lowest_common_ancestor, "input in the longest path to
//      LCA is the non-residual input"). torchvision's downsample path is 1 node, the main path 3
//      (Bottleneck: 5). Equal lengths, or no common ancestor: kNotResidual, not a guess.
//   5. Neither conv-side: kNotResidual (no conv epilogue to fuse into).
//
//   ResidualAdd r = ClassifyResidualAdd(graph, edges, add_index);
//   if (r.kind == ResidualAdd::kResidual) shortcut = graph.node(add_index).input(r.shortcut_slot);
#ifndef QCAL_SERVER_ONNX_RESIDUAL_ADD_H_
#define QCAL_SERVER_ONNX_RESIDUAL_ADD_H_

#include <map>
#include <set>
#include <string>

#include "onnx/onnx_pb.h"

namespace qcal::server {

// Producers and reader counts of a graph's tensors (main graph only).
struct GraphEdges {
  explicit GraphEdges(const onnx::GraphProto& graph);
  std::map<std::string, int> producer;  // tensor -> index into graph.node
  std::map<std::string, int> readers;   // tensor -> number of node inputs reading it
  std::set<std::string> constants;      // initializers and Constant nodes' outputs
};

struct ResidualAdd {
  enum Kind { kConstant, kNotResidual, kResidual };
  Kind kind = kNotResidual;
  int shortcut_slot = -1;  // kResidual: 0 or 1
  int conv_node = -1;      // kResidual: the Conv/ConvTranspose of the conv-side input
  // kNotResidual: why; kResidual: how the shortcut was told apart.
  std::string reason;
};

// `add_index` must be a two-input Add (IsTwoInputAdd).
ResidualAdd ClassifyResidualAdd(const onnx::GraphProto& graph, const GraphEdges& edges,
                                int add_index);

// Each residual Add's rank among the residual Adds of its block (the literal scope module,
// CandidateModules(node).front()), in graph order: the N of "<block>.residual_quantizer_N" (0 for
// plain "residual_quantizer"), as qcal.torch numbers a block's residual adds. Adds without scope
// or not residual are absent.
std::map<int, int> ResidualAddRanks(const onnx::GraphProto& graph, const GraphEdges& edges);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_RESIDUAL_ADD_H_
