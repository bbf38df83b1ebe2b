// Small hand-built float ONNX graphs (opset 13) for the placement tests, named the way torch 1.13's
// torch.onnx names a module's nodes ("/layer1/layer1.0/conv1/Conv"), with real shapes so that
// onnx::checker and ONNX Runtime accept them. Weights are deterministic pseudo-random values.
#ifndef QCAL_SERVER_ONNX_TEST_GRAPHS_H_
#define QCAL_SERVER_ONNX_TEST_GRAPHS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"

namespace qcal::server::testing {

class GraphBuilder {
 public:
  GraphBuilder();
  // A float graph input / output of these dims.
  GraphBuilder& Input(const std::string& name, const std::vector<int64_t>& dims);
  GraphBuilder& Output(const std::string& name);
  // A float initializer with values in [-1, 1) from `seed`.
  GraphBuilder& Weight(const std::string& name, const std::vector<int64_t>& dims, unsigned seed);
  // A node; `ints` / `int_lists` are its attributes.
  GraphBuilder& Node(const std::string& op, const std::string& name,
                     const std::vector<std::string>& inputs,
                     const std::vector<std::string>& outputs,
                     const std::vector<std::pair<std::string, int64_t>>& ints = {},
                     const std::vector<std::pair<std::string, std::vector<int64_t>>>& lists = {});
  // Conv "/<scope>/Conv" reading `input` with weight "<module>.weight" [cout, cin, k...] (k of
  // `rank` spatial dims, "same" padding); returns its output.
  std::string Conv(const std::string& scope, const std::string& module, const std::string& input,
                   int64_t cin, int64_t cout, int64_t k, int rank = 2);
  onnx::ModelProto model;

 private:
  unsigned seed_ = 1;
};

// torchvision's BasicBlock as "layer1.0", input "x" [1, 4, 6, 6], output "out":
//   conv1 -> relu -> conv2 -> Add(conv2, shortcut) -> relu_1
// The shortcut is "x", or with `downsample` "layer1.0.downsample.0"'s 1x1 conv of x. With
// `identity_first` the Add reads (shortcut, conv2) as `identity + out` does, else (conv2,
// shortcut) as `out += identity` does.
onnx::ModelProto ResidualBlock(bool downsample, bool identity_first);

// "x" of rank `rank` + 2 ([1, 2, 8...]) read by "/mp/MaxPool", "/ap/Pad" -> "/ap/AveragePool"
// (as torch 1.13 exports AvgPool) and "/aap/GlobalAveragePool"; outputs "mp", "ap", "aap".
onnx::ModelProto Pools(int rank);

// "x" [1, 2, 4, 4] -> three 1x1 convs "/b1/Conv", "/b2/Conv", "/b3/Conv" (outputs o1, o2, o3);
// o1 is also read by "/p1/MaxPool" (output "p"), o2 by "/c2/Conv" (output "q");
// "/cat/Concat"(o1, o2, o3) -> "/head/Conv" (output "h").
onnx::ModelProto ConcatBranches();

// A residual + pool + concat network for ONNX Runtime: "x" [1, 4, 8, 8] -> "/conv1/Conv" ->
// relu -> BasicBlock "layer1.0" (shortcut = its conv1's input) -> "/maxpool/MaxPool" ->
// Concat("/b1/Conv", "/b2/Conv", maxpool output) -> "/avgpool/GlobalAveragePool" -> Flatten ->
// "/fc/Gemm" -> "logits" [1, 5].
onnx::ModelProto ResidualPoolConcatNet();

}  // namespace qcal::server::testing

#endif  // QCAL_SERVER_ONNX_TEST_GRAPHS_H_
