#include "server/onnx/test_graphs.h"

#include <random>

namespace qcal::server::testing {
namespace {

void SetFloatType(onnx::ValueInfoProto* v, const std::vector<int64_t>& dims) {
  onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
}

}  // namespace

GraphBuilder::GraphBuilder() {
  model.set_ir_version(8);
  model.set_producer_name("qcal test_graphs");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(13);
  model.mutable_graph()->set_name("g");
}

GraphBuilder& GraphBuilder::Input(const std::string& name, const std::vector<int64_t>& dims) {
  onnx::ValueInfoProto* v = model.mutable_graph()->add_input();
  v->set_name(name);
  SetFloatType(v, dims);
  return *this;
}

GraphBuilder& GraphBuilder::Output(const std::string& name) {
  onnx::ValueInfoProto* v = model.mutable_graph()->add_output();
  v->set_name(name);
  // Rank unknown: an empty shape message (onnx 1.12's checker requires the field).
  onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  t->mutable_shape();
  return *this;
}

GraphBuilder& GraphBuilder::Weight(const std::string& name, const std::vector<int64_t>& dims,
                                   unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  onnx::TensorProto* t = model.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  int64_t n = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    n *= d;
  }
  for (int64_t i = 0; i < n; ++i) t->add_float_data(uniform(rng));
  return *this;
}

GraphBuilder& GraphBuilder::Node(
    const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
    const std::vector<std::string>& outputs,
    const std::vector<std::pair<std::string, int64_t>>& ints,
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& lists) {
  onnx::NodeProto* node = model.mutable_graph()->add_node();
  node->set_op_type(op);
  node->set_name(name);
  for (const std::string& in : inputs) node->add_input(in);
  for (const std::string& out : outputs) node->add_output(out);
  for (const auto& [key, value] : ints) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }
  for (const auto& [key, values] : lists) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }
  return *this;
}

std::string GraphBuilder::Conv(const std::string& scope, const std::string& module,
                               const std::string& input, int64_t cin, int64_t cout, int64_t k,
                               int rank) {
  std::vector<int64_t> dims{cout, cin};
  for (int i = 0; i < rank; ++i) dims.push_back(k);
  Weight(module + ".weight", dims, seed_++);
  const std::string out = scope + "/Conv_output_0";
  Node("Conv", scope + "/Conv", {input, module + ".weight"}, {out}, {},
       {{"pads", std::vector<int64_t>(2 * rank, k / 2)}});
  return out;
}

onnx::ModelProto ResidualBlock(bool downsample, bool identity_first) {
  GraphBuilder b;
  b.Input("x", {1, 4, 6, 6});
  const std::string s = "/layer1/layer1.0";
  const std::string c1 = b.Conv(s + "/conv1", "layer1.0.conv1", "x", 4, 4, 3);
  b.Node("Relu", s + "/relu/Relu", {c1}, {s + "/relu/Relu_output_0"});
  const std::string c2 = b.Conv(s + "/conv2", "layer1.0.conv2", s + "/relu/Relu_output_0", 4, 4, 3);
  const std::string shortcut =
      downsample ? b.Conv(s + "/downsample/downsample.0", "layer1.0.downsample.0", "x", 4, 4, 1)
                 : "x";
  b.Node("Add", s + "/Add",
         identity_first ? std::vector<std::string>{shortcut, c2}
                        : std::vector<std::string>{c2, shortcut},
         {s + "/Add_output_0"});
  b.Node("Relu", s + "/relu_1/Relu", {s + "/Add_output_0"}, {"out"});
  b.Output("out");
  return b.model;
}

onnx::ModelProto Pools(int rank) {
  GraphBuilder b;
  std::vector<int64_t> dims{1, 2};
  for (int i = 0; i < rank; ++i) dims.push_back(8);
  b.Input("x", dims);
  const std::vector<int64_t> kernel(rank, 2);
  b.Node("MaxPool", "/mp/MaxPool", {"x"}, {"mp"}, {},
         {{"kernel_shape", kernel}, {"strides", kernel}});
  onnx::TensorProto* pads = b.model.mutable_graph()->add_initializer();
  pads->set_name("/ap/Constant_output_0");
  pads->set_data_type(onnx::TensorProto::INT64);
  pads->add_dims(2 * (rank + 2));
  for (int i = 0; i < 2 * (rank + 2); ++i) pads->add_int64_data(0);
  b.Node("Pad", "/ap/Pad", {"x", "/ap/Constant_output_0"}, {"/ap/Pad_output_0"});
  b.Node("AveragePool", "/ap/AveragePool", {"/ap/Pad_output_0"}, {"ap"}, {},
         {{"kernel_shape", kernel}, {"strides", kernel}});
  b.Node("GlobalAveragePool", "/aap/GlobalAveragePool", {"x"}, {"aap"});
  b.Output("mp").Output("ap").Output("aap");
  return b.model;
}

onnx::ModelProto ConcatBranches() {
  GraphBuilder b;
  b.Input("x", {1, 2, 4, 4});
  const std::string o1 = b.Conv("/b1", "b1", "x", 2, 2, 1);
  const std::string o2 = b.Conv("/b2", "b2", "x", 2, 2, 1);
  const std::string o3 = b.Conv("/b3", "b3", "x", 2, 2, 1);
  b.Node("MaxPool", "/p1/MaxPool", {o1}, {"p"}, {}, {{"kernel_shape", {2, 2}}});
  b.Weight("c2.weight", {2, 2, 1, 1}, 99);
  b.Node("Conv", "/c2/Conv", {o2, "c2.weight"}, {"q"});
  b.Node("Concat", "/cat/Concat", {o1, o2, o3}, {"/cat/Concat_output_0"}, {{"axis", 1}});
  b.Weight("head.weight", {2, 6, 1, 1}, 98);
  b.Node("Conv", "/head/Conv", {"/cat/Concat_output_0", "head.weight"}, {"h"});
  b.Output("p").Output("q").Output("h");
  return b.model;
}

onnx::ModelProto ResidualPoolConcatNet() {
  GraphBuilder b;
  b.Input("x", {1, 4, 8, 8});
  const std::string c0 = b.Conv("/conv1", "conv1", "x", 4, 4, 3);
  b.Node("Relu", "/relu/Relu", {c0}, {"/relu/Relu_output_0"});
  const std::string s = "/layer1/layer1.0";
  const std::string c1 = b.Conv(s + "/conv1", "layer1.0.conv1", "/relu/Relu_output_0", 4, 4, 3);
  b.Node("Relu", s + "/relu/Relu", {c1}, {s + "/relu/Relu_output_0"});
  const std::string c2 = b.Conv(s + "/conv2", "layer1.0.conv2", s + "/relu/Relu_output_0", 4, 4, 3);
  b.Node("Add", s + "/Add", {c2, "/relu/Relu_output_0"}, {s + "/Add_output_0"});
  b.Node("Relu", s + "/relu_1/Relu", {s + "/Add_output_0"}, {s + "/relu_1/Relu_output_0"});
  b.Node("MaxPool", "/maxpool/MaxPool", {s + "/relu_1/Relu_output_0"},
         {"/maxpool/MaxPool_output_0"}, {}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}});
  const std::string m = "/maxpool/MaxPool_output_0";
  const std::string o1 = b.Conv("/b1", "b1", m, 4, 3, 1);
  const std::string o2 = b.Conv("/b2", "b2", m, 4, 3, 3);
  b.Node("Concat", "/cat/Concat", {o1, o2, m}, {"/cat/Concat_output_0"}, {{"axis", 1}});
  b.Node("GlobalAveragePool", "/avgpool/GlobalAveragePool", {"/cat/Concat_output_0"},
         {"/avgpool/GlobalAveragePool_output_0"});
  b.Node("Flatten", "/Flatten", {"/avgpool/GlobalAveragePool_output_0"}, {"/Flatten_output_0"},
         {{"axis", 1}});
  b.Weight("fc.weight", {5, 10}, 77).Weight("fc.bias", {5}, 78);
  b.Node("Gemm", "/fc/Gemm", {"/Flatten_output_0", "fc.weight", "fc.bias"}, {"logits"},
         {{"transB", 1}});
  b.Output("logits");
  return b.model;
}

}  // namespace qcal::server::testing
