#include "server/onnx/testing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "server/onnx/onnx_model.h"

namespace qcal::server::testing {

std::string ReadTestdata(const std::string& name) {
  const std::string path = std::string(QCAL_SOURCE_DIR) + "/server/onnx/testdata/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

onnx::ModelProto LoadModel(const std::string& name) {
  absl::StatusOr<onnx::ModelProto> model = ParseOnnxModel(ReadTestdata(name));
  if (!model.ok()) {
    ADD_FAILURE() << name << ": " << model.status();
    return {};
  }
  return *std::move(model);
}

int NodeIndex(const onnx::GraphProto& graph, const std::string& name) {
  for (int i = 0; i < graph.node_size(); ++i) {
    if (graph.node(i).name() == name) return i;
  }
  return -1;
}

const onnx::NodeProto* Producer(const onnx::GraphProto& graph, const std::string& name) {
  for (const onnx::NodeProto& node : graph.node()) {
    for (const std::string& output : node.output()) {
      if (output == name) return &node;
    }
  }
  return nullptr;
}

const onnx::TensorProto* Initializer(const onnx::GraphProto& graph, const std::string& name) {
  for (const onnx::TensorProto& t : graph.initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

std::vector<float> Values(const onnx::TensorProto& tensor) {
  std::vector<float> values;
  switch (tensor.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (tensor.has_raw_data()) {
        values.resize(tensor.raw_data().size() / sizeof(float));
        std::memcpy(values.data(), tensor.raw_data().data(), values.size() * sizeof(float));
      } else {
        values.assign(tensor.float_data().begin(), tensor.float_data().end());
      }
      break;
    case onnx::TensorProto::INT8:
      for (char c : tensor.raw_data()) values.push_back(static_cast<int8_t>(c));
      for (int32_t v : tensor.int32_data()) values.push_back(static_cast<float>(v));
      break;
    case onnx::TensorProto::UINT8:
      for (char c : tensor.raw_data()) values.push_back(static_cast<uint8_t>(c));
      for (int32_t v : tensor.int32_data()) values.push_back(static_cast<float>(v));
      break;
    default:
      ADD_FAILURE() << "initializer " << tensor.name() << " has data type " << tensor.data_type();
  }
  return values;
}

int64_t IntAttr(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  for (const onnx::AttributeProto& attr : node.attribute()) {
    if (attr.name() == name) return attr.i();
  }
  return fallback;
}

std::vector<float> ReferenceWeightScale(const onnx::TensorProto& w, int axis, float bound) {
  const std::vector<float> values = Values(w);
  int64_t stride = 1;
  for (int d = axis + 1; d < w.dims_size(); ++d) stride *= w.dims(d);
  std::vector<float> amax(w.dims(axis), 0.0f);
  for (size_t i = 0; i < values.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / stride) % w.dims(axis);
    amax[c] = std::max(amax[c], std::abs(values[i]));
  }
  std::vector<float> scale;
  for (float a : amax) scale.push_back(a == 0 ? 1.0f : a / bound);
  return scale;
}

int CountOps(const onnx::GraphProto& graph, const std::string& op_type) {
  int n = 0;
  for (const onnx::NodeProto& node : graph.node()) n += node.op_type() == op_type;
  return n;
}

QuantizerAmax AmaxEntry(const std::string& name, std::vector<float> amax) {
  QuantizerAmax e;
  e.name = name;
  e.amax = std::move(amax);
  e.method = "max";
  return e;
}

AmaxTable AmaxTableOf(const std::map<std::string, std::vector<float>>& amax_by_quantizer) {
  AmaxTable table;
  table.model = "m";
  table.method = "max";
  for (const auto& [name, amax] : amax_by_quantizer) table.quantizers[name] = AmaxEntry(name, amax);
  return table;
}

}  // namespace qcal::server::testing
