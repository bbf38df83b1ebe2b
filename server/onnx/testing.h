// Helpers shared by the server/onnx tests: the committed models of testdata/ (made by
// testdata/make_models.py) and small readers for graphs.
#ifndef QCAL_SERVER_ONNX_TESTING_H_
#define QCAL_SERVER_ONNX_TESTING_H_

#include <map>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"
#include "server/tables/amax_table.h"

namespace qcal::server::testing {

// The bytes of server/onnx/testdata/<name>.
std::string ReadTestdata(const std::string& name);

// ParseOnnxModel of testdata/<name>; fails the test (ADD_FAILURE) and returns an empty model on
// error.
onnx::ModelProto LoadModel(const std::string& name);

// Index into graph.node of the node named `name`; -1 when there is none.
int NodeIndex(const onnx::GraphProto& graph, const std::string& name);

// The node producing tensor `name`; nullptr for graph inputs and initializers.
const onnx::NodeProto* Producer(const onnx::GraphProto& graph, const std::string& name);

// The initializer named `name`; nullptr when there is none.
const onnx::TensorProto* Initializer(const onnx::GraphProto& graph, const std::string& name);

// A float or int8/uint8 initializer's values, widened to float.
std::vector<float> Values(const onnx::TensorProto& tensor);

// The node's int attribute `name`, or `fallback`.
int64_t IntAttr(const onnx::NodeProto& node, const std::string& name, int64_t fallback);

// Per-channel weight scale computed the plain way, independently of weight_amax.cc: each flat
// index maps to its channel on `axis` by stride arithmetic; scale = max |w| / bound, or 1 where
// that max is 0.
std::vector<float> ReferenceWeightScale(const onnx::TensorProto& w, int axis, float bound = 127);

int CountOps(const onnx::GraphProto& graph, const std::string& op_type);

// An amax table entry as ComputeAmax writes one for a max calibrator: `amax`, method "max",
// 8-bit signed integers.
QuantizerAmax AmaxEntry(const std::string& name, std::vector<float> amax);
// Model "m", method "max", one AmaxEntry per quantizer.
AmaxTable AmaxTableOf(const std::map<std::string, std::vector<float>>& amax_by_quantizer);

}  // namespace qcal::server::testing

#endif  // QCAL_SERVER_ONNX_TESTING_H_
