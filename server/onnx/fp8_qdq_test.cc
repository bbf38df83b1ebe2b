// FP8 E4M3 pairs in the QDQ export (fp8_qdq.h): types, opset, attributes and scales of the file;
// fp8_ort_test.cc runs the same exports in ONNX Runtime.
#include "server/onnx/fp8_qdq.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/onnx/onnx_model.h"
#include "server/onnx/qdq_export.h"
#include "server/onnx/testing.h"

namespace qcal::server {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::Initializer;
using testing::IntAttr;
using testing::LoadModel;
using testing::Producer;
using testing::ReferenceWeightScale;
using testing::Values;

constexpr auto kFp8 = kernels::QuantFormat::kFp8E4M3;
constexpr auto kInt = kernels::QuantFormat::kInt;

QuantizerAmax Entry(const std::string& name, std::vector<float> amax, kernels::QuantFormat format,
                    std::optional<int> axis = std::nullopt) {
  return {.name = name, .amax = std::move(amax), .axis = axis, .method = "max", .format = format};
}

// cnn_bn.onnx (conv1..3, fc1, fc2): conv1, conv2 and fc1 FP8, conv3 and fc2 INT8. fc1's weight
// has an FP8 entry of its own; conv1's and conv2's weights have none and follow their input.
AmaxTable MixedTable() {
  AmaxTable table{.model = "mixed", .method = "max", .quantizers = {}};
  for (const auto& [module, amax, format] :
       std::vector<std::tuple<std::string, float, kernels::QuantFormat>>{{"conv1", 2.0f, kFp8},
                                                                         {"conv2", 1.5f, kFp8},
                                                                         {"conv3", 1.25f, kInt},
                                                                         {"fc1", 3.0f, kFp8},
                                                                         {"fc2", 0.75f, kInt}}) {
    const std::string name = module + "._input_quantizer";
    table.quantizers[name] = Entry(name, {amax}, format);
  }
  table.quantizers["fc1._weight_quantizer"] =
      Entry("fc1._weight_quantizer", std::vector<float>(8, 1.0f), kFp8, 0);
  return table;
}

struct Pair {
  const onnx::NodeProto* q = nullptr;
  const onnx::NodeProto* dq = nullptr;
  const onnx::TensorProto* scale = nullptr;
  const onnx::TensorProto* zero_point = nullptr;  // nullptr for TRT_FP8 ops
};

// The Q -> DQ pair feeding input `slot` of node `node_name` (ONNX or TRT_FP8 ops).
Pair Feeding(const onnx::GraphProto& graph, const std::string& node_name, int slot) {
  Pair p;
  const int i = testing::NodeIndex(graph, node_name);
  if (i < 0) {
    ADD_FAILURE() << "no node " << node_name;
    return p;
  }
  p.dq = Producer(graph, graph.node(i).input(slot));
  p.q = p.dq != nullptr ? Producer(graph, p.dq->input(0)) : nullptr;
  if (p.q == nullptr) {
    ADD_FAILURE() << node_name << " input " << slot << " has no Q -> DQ pair";
    return p;
  }
  EXPECT_EQ(p.q->input(1), p.dq->input(1));
  p.scale = Initializer(graph, p.q->input(1));
  if (p.q->input_size() == 3) p.zero_point = Initializer(graph, p.q->input(2));
  return p;
}

bool HasAttr(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return true;
  }
  return false;
}

TEST(Fp8QdqTest, FormatHelpers) {
  EXPECT_EQ(*QdqBound("q", kFp8, 8, false), 448.0f);
  EXPECT_EQ(*QdqBound("q", kInt, 8, false), 127.0f);
  EXPECT_EQ(*QdqBound("q", kInt, 8, true), 255.0f);
  EXPECT_THAT(QdqBound("conv._input_quantizer", kFp8, 8, true).status().message(),
              AllOf(HasSubstr("conv._input_quantizer"), HasSubstr("signed")));
  EXPECT_EQ(QdqBound("q", kFp8, 4, false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ZeroPointDataType(kFp8, false), 17);
  EXPECT_EQ(ZeroPointDataType(kInt, false), onnx::TensorProto::INT8);
  EXPECT_EQ(ZeroPointDataType(kInt, true), onnx::TensorProto::UINT8);
  EXPECT_EQ(*ParseFp8Ops("onnx"), Fp8Ops::kOnnx);
  EXPECT_EQ(*ParseFp8Ops(""), Fp8Ops::kOnnx);
  EXPECT_EQ(*ParseFp8Ops("trt"), Fp8Ops::kTensorRT);
  EXPECT_THAT(ParseFp8Ops("fp8").status().message(), HasSubstr("'fp8'"));
}

TEST(Fp8QdqTest, Fp8PairsAreOpset19Float8E4M3FnAndInt8PairsStayInt8) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  absl::StatusOr<QdqResult> qdq = ExportQdq(model, MixedTable(), {});
  ASSERT_TRUE(qdq.ok()) << qdq.status();
  const onnx::ModelProto& out = qdq->model;
  EXPECT_EQ(DefaultOpset(out), 19);
  EXPECT_EQ(out.ir_version(), 9);
  const onnx::GraphProto& g = out.graph();

  // Activations: per tensor, scale = amax / 448, one FP8 zero byte, saturate left at default.
  for (const auto& [node, amax] : std::vector<std::pair<std::string, float>>{
           {"/conv1/Conv", 2.0f}, {"/conv2/Conv", 1.5f}, {"/fc1/Gemm", 3.0f}}) {
    const Pair p = Feeding(g, node, 0);
    ASSERT_NE(p.zero_point, nullptr) << node;
    EXPECT_EQ(p.zero_point->data_type(), 17) << node;
    EXPECT_EQ(p.zero_point->dims_size(), 0) << node;
    EXPECT_EQ(p.zero_point->raw_data(), std::string(1, '\0')) << node;
    EXPECT_EQ(p.zero_point->int32_data_size(), 0) << node;
    EXPECT_THAT(Values(*p.scale), ElementsAreArray({amax / 448.0f})) << node;
    EXPECT_FALSE(HasAttr(*p.q, "saturate")) << node;
    EXPECT_FALSE(HasAttr(*p.q, "axis")) << node;
  }
  // Weights: per channel on axis 0 (Conv) / the output axis (Gemm), max |w| / 448.
  for (const auto& [node, axis] : std::vector<std::pair<std::string, int>>{
           {"/conv1/Conv", 0}, {"/conv2/Conv", 0}, {"/fc1/Gemm", 0}}) {
    const Pair p = Feeding(g, node, 1);
    ASSERT_NE(p.zero_point, nullptr) << node;
    const onnx::TensorProto& w = *Initializer(model.graph(), p.q->input(0));
    EXPECT_EQ(p.zero_point->data_type(), 17) << node;
    EXPECT_EQ(p.zero_point->raw_data(), std::string(w.dims(axis), '\0')) << node;
    ASSERT_EQ(p.zero_point->dims_size(), 1) << node;
    EXPECT_EQ(p.zero_point->dims(0), w.dims(axis)) << node;
    EXPECT_EQ(IntAttr(*p.q, "axis", -1), axis) << node;
    EXPECT_EQ(IntAttr(*p.dq, "axis", -1), axis) << node;
    EXPECT_THAT(Values(*p.scale), ElementsAreArray(ReferenceWeightScale(w, axis, 448))) << node;
  }
  // INT8 pairs: int8 zero point, amax / 127, weights too.
  for (const auto& [node, amax] :
       std::vector<std::pair<std::string, float>>{{"/conv3/Conv", 1.25f}, {"/fc2/Gemm", 0.75f}}) {
    const Pair in = Feeding(g, node, 0);
    ASSERT_NE(in.zero_point, nullptr);
    EXPECT_EQ(in.zero_point->data_type(), onnx::TensorProto::INT8) << node;
    EXPECT_THAT(Values(*in.scale), ElementsAreArray({amax / 127.0f})) << node;
    const Pair w = Feeding(g, node, 1);
    ASSERT_NE(w.zero_point, nullptr);
    EXPECT_EQ(w.zero_point->data_type(), onnx::TensorProto::INT8) << node;
  }
}

TEST(Fp8QdqTest, Int8OnlyExportKeepsItsOpset) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  AmaxTable table = MixedTable();
  for (auto& [name, entry] : table.quantizers) entry.format = kInt;
  absl::StatusOr<QdqResult> qdq = ExportQdq(model, table, {});
  ASSERT_TRUE(qdq.ok()) << qdq.status();
  EXPECT_EQ(DefaultOpset(qdq->model), 13);
  EXPECT_EQ(qdq->model.ir_version(), model.ir_version());
}

// cnn_bn with a ReduceMean (changed at 18) on its output.
onnx::ModelProto WithReduceMean() {
  onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  onnx::GraphProto* g = model.mutable_graph();
  onnx::NodeProto* mean = g->add_node();
  mean->set_op_type("ReduceMean");
  mean->set_name("/head/ReduceMean");
  mean->add_input("output");
  mean->add_output("mean");
  onnx::ValueInfoProto* out = g->add_output();
  out->set_name("mean");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  out->mutable_type()->mutable_tensor_type()->mutable_shape();
  return model;
}

TEST(Fp8QdqTest, Fp8ExportRefusesReduceMeanButInt8ExportsIt) {
  const onnx::ModelProto model = WithReduceMean();
  ASSERT_TRUE(CheckOnnxModel(model).ok()) << CheckOnnxModel(model);
  absl::StatusOr<QdqResult> fp8 = ExportQdq(model, MixedTable(), {});
  EXPECT_EQ(fp8.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fp8.status().message(),
              AllOf(HasSubstr("model 'mixed'"), HasSubstr("'/head/ReduceMean' (ReduceMean"),
                    HasSubstr("changed at opset 18"), HasSubstr("--fp8-ops trt")));

  AmaxTable int8 = MixedTable();
  for (auto& [name, entry] : int8.quantizers) entry.format = kInt;
  absl::StatusOr<QdqResult> ok = ExportQdq(model, int8, {});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(DefaultOpset(ok->model), 13);

  // TensorRT's custom ops never change the opset, so ReduceMean does not matter to them.
  QdqOptions trt;
  trt.fp8_ops = Fp8Ops::kTensorRT;
  absl::StatusOr<QdqResult> custom = ExportQdq(model, MixedTable(), trt);
  ASSERT_TRUE(custom.ok()) << custom.status();
  EXPECT_EQ(DefaultOpset(custom->model), 13);
}

TEST(Fp8QdqTest, TensorRtCustomOpsAsModelOptEmitsThem) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  QdqOptions options;
  options.fp8_ops = Fp8Ops::kTensorRT;
  absl::StatusOr<QdqResult> qdq = ExportQdq(model, MixedTable(), options);
  ASSERT_TRUE(qdq.ok()) << qdq.status();
  const onnx::ModelProto& out = qdq->model;
  EXPECT_EQ(DefaultOpset(out), 13);
  EXPECT_EQ(out.ir_version(), model.ir_version());
  bool trt_import = false;
  for (const auto& opset : out.opset_import()) {
    if (opset.domain() == "trt") trt_import = opset.version() == 1;
  }
  EXPECT_TRUE(trt_import);
  EXPECT_TRUE(CheckOnnxModel(out).ok()) << CheckOnnxModel(out);
  for (const auto& t : out.graph().initializer()) EXPECT_NE(t.data_type(), 17) << t.name();

  const onnx::GraphProto& g = out.graph();
  const Pair in = Feeding(g, "/conv1/Conv", 0);
  ASSERT_NE(in.q, nullptr);
  EXPECT_EQ(in.q->op_type(), "TRT_FP8QuantizeLinear");
  EXPECT_EQ(in.q->domain(), "trt");
  EXPECT_EQ(in.dq->op_type(), "TRT_FP8DequantizeLinear");
  EXPECT_EQ(in.dq->domain(), "trt");
  EXPECT_EQ(in.q->input_size(), 2);
  EXPECT_EQ(in.dq->input_size(), 2);
  EXPECT_EQ(in.q->attribute_size(), 0);
  EXPECT_THAT(Values(*in.scale), ElementsAreArray({2.0f / 448.0f}));

  // Per-channel FP8 weight scales collapse to their largest, with a warning.
  const Pair w = Feeding(g, "/conv2/Conv", 1);
  ASSERT_NE(w.q, nullptr);
  EXPECT_EQ(w.q->op_type(), "TRT_FP8QuantizeLinear");
  EXPECT_EQ(w.q->attribute_size(), 0);
  EXPECT_EQ(w.scale->dims_size(), 0);
  const std::vector<float> channels =
      ReferenceWeightScale(*Initializer(model.graph(), w.q->input(0)), 0, 448);
  EXPECT_THAT(Values(*w.scale),
              ElementsAreArray({*std::max_element(channels.begin(), channels.end())}));
  EXPECT_THAT(qdq->warnings, Contains(AllOf(HasSubstr(w.q->input(0)), HasSubstr("largest"))));

  // INT8 pairs stay standard QuantizeLinear.
  const Pair int8 = Feeding(g, "/conv3/Conv", 0);
  ASSERT_NE(int8.q, nullptr);
  EXPECT_EQ(int8.q->op_type(), "QuantizeLinear");
  EXPECT_EQ(int8.q->domain(), "");
  EXPECT_EQ(int8.zero_point->data_type(), onnx::TensorProto::INT8);
}

TEST(Fp8QdqTest, UnsignedFp8QuantizerIsRefused) {
  AmaxTable table = MixedTable();
  table.quantizers["conv1._input_quantizer"].is_unsigned = true;
  absl::StatusOr<QdqResult> qdq = ExportQdq(LoadModel("cnn_bn.onnx"), table, {});
  EXPECT_EQ(qdq.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(qdq.status().message(), HasSubstr("conv1._input_quantizer"));
}

}  // namespace
}  // namespace qcal::server
