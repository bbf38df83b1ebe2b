#include "server/onnx/qdq_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "server/onnx/onnx_model.h"
#include "server/onnx/testing.h"

namespace qcal::server {
namespace {

using testing::AmaxEntry;
using testing::CountOps;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::Initializer;
using testing::IntAttr;
using ::testing::IsEmpty;
using testing::LoadModel;
using testing::Producer;
using testing::ReferenceWeightScale;
using testing::Values;

// Input quantizers "<module>._input_quantizer" with one amax each.
AmaxTable InputTable(const std::map<std::string, float>& amax_by_module) {
  AmaxTable table;
  table.model = "m";
  table.method = "max";
  for (const auto& [module, amax] : amax_by_module) {
    const std::string name = module + "._input_quantizer";
    table.quantizers[name] = AmaxEntry(name, {amax});
  }
  return table;
}

// The Q -> DQ pair feeding input `slot` of node `node_name`.
struct Qdq {
  const onnx::NodeProto* q = nullptr;
  const onnx::NodeProto* dq = nullptr;
  std::string source;  // what Q reads
  std::vector<float> scale;
  std::vector<float> zero_point;
  int zero_point_type = 0;
  int64_t axis = -1;  // -1: no axis attribute (per-tensor)
};

Qdq QdqFeeding(const onnx::GraphProto& graph, const std::string& node_name, int slot) {
  Qdq r;
  const int i = testing::NodeIndex(graph, node_name);
  if (i < 0) {
    ADD_FAILURE() << "no node " << node_name;
    return r;
  }
  r.dq = Producer(graph, graph.node(i).input(slot));
  if (r.dq == nullptr || r.dq->op_type() != "DequantizeLinear") {
    ADD_FAILURE() << node_name << " input " << slot << " is not fed by a DequantizeLinear";
    return r;
  }
  r.q = Producer(graph, r.dq->input(0));
  if (r.q == nullptr || r.q->op_type() != "QuantizeLinear") {
    ADD_FAILURE() << node_name << ": the DequantizeLinear is not fed by a QuantizeLinear";
    return r;
  }
  r.source = r.q->input(0);
  EXPECT_EQ(r.q->input(1), r.dq->input(1)) << "Q and DQ share the scale";
  EXPECT_EQ(r.q->input(2), r.dq->input(2)) << "Q and DQ share the zero point";
  EXPECT_EQ(IntAttr(*r.q, "axis", -1), IntAttr(*r.dq, "axis", -1));
  const onnx::TensorProto* scale = Initializer(graph, r.q->input(1));
  const onnx::TensorProto* zp = Initializer(graph, r.q->input(2));
  if (scale == nullptr || zp == nullptr) {
    ADD_FAILURE() << node_name << ": scale or zero point is not an initializer";
    return r;
  }
  r.scale = Values(*scale);
  r.zero_point = Values(*zp);
  r.zero_point_type = zp->data_type();
  r.axis = IntAttr(*r.q, "axis", -1);
  // Per-tensor pairs are scalars, per-channel ones 1-D.
  EXPECT_EQ(scale->dims_size(), r.axis < 0 ? 0 : 1);
  EXPECT_EQ(zp->dims_size(), r.axis < 0 ? 0 : 1);
  return r;
}

std::set<std::string> AllNames(const onnx::GraphProto& graph) {
  std::set<std::string> names;
  for (const auto& v : graph.input()) names.insert(v.name());
  for (const auto& v : graph.output()) names.insert(v.name());
  for (const auto& t : graph.initializer()) names.insert(t.name());
  for (const auto& n : graph.node()) {
    names.insert(n.name());
    names.insert(n.output().begin(), n.output().end());
  }
  return names;
}

// What every export must be: checker-clean, sorted, SSA, unique names that never reuse one of
// the original model, original nodes kept in order, Q/DQ scales finite and > 0.
void ExpectWellFormed(const onnx::ModelProto& original, const onnx::ModelProto& qdq) {
  EXPECT_TRUE(CheckOnnxModel(qdq).ok()) << CheckOnnxModel(qdq);
  absl::StatusOr<onnx::ModelProto> reparsed = ParseOnnxModel(qdq.SerializeAsString());
  EXPECT_TRUE(reparsed.ok()) << reparsed.status();

  const onnx::GraphProto& g = qdq.graph();
  std::set<std::string> defined;
  for (const auto& v : g.input()) defined.insert(v.name());
  std::set<std::string> node_names, outputs;
  for (const auto& t : g.initializer()) {
    EXPECT_TRUE(defined.insert(t.name()).second) << "initializer defined twice: " << t.name();
  }
  for (const auto& n : g.node()) {
    for (const auto& in : n.input()) {
      EXPECT_TRUE(in.empty() || defined.contains(in))
          << n.name() << " reads " << in << " before it is defined";
    }
    EXPECT_FALSE(n.name().empty());
    EXPECT_TRUE(node_names.insert(n.name()).second) << "node name used twice: " << n.name();
    for (const auto& out : n.output()) {
      EXPECT_TRUE(outputs.insert(out).second) << "tensor produced twice: " << out;
      defined.insert(out);
    }
  }
  const std::set<std::string> old_names = AllNames(original.graph());
  std::vector<std::string> kept;
  for (const auto& n : g.node()) {
    if (n.op_type() == "QuantizeLinear" || n.op_type() == "DequantizeLinear") {
      EXPECT_FALSE(old_names.contains(n.name())) << "new node reuses " << n.name();
      EXPECT_FALSE(old_names.contains(n.output(0))) << "new tensor reuses " << n.output(0);
      EXPECT_FALSE(old_names.contains(n.input(1))) << "new scale reuses " << n.input(1);
      for (float s : Values(*Initializer(g, n.input(1)))) {
        EXPECT_TRUE(std::isfinite(s) && s > 0) << n.name() << " scale " << s;
      }
      for (float z : Values(*Initializer(g, n.input(2)))) EXPECT_EQ(z, 0) << n.name();
    } else {
      kept.push_back(n.name());
    }
  }
  std::vector<std::string> original_nodes;
  for (const auto& n : original.graph().node()) original_nodes.push_back(n.name());
  EXPECT_EQ(kept, original_nodes);
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), CountOps(g, "DequantizeLinear"));
}

TEST(ExportQdq, CnnWithFoldedBatchNorm) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  const AmaxTable table = InputTable(
      {{"conv1", 2.5f}, {"conv2", 1.75f}, {"conv3", 3.0f}, {"fc1", 0.5f}, {"fc2", 4.0f}});
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->warnings, IsEmpty());
  const onnx::GraphProto& g = r->model.graph();
  ExpectWellFormed(model, r->model);
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 10);
  EXPECT_EQ(CountOps(g, "DequantizeLinear"), 10);

  struct Layer {
    std::string node, input, weight;
    float amax;
  };
  for (const Layer& l : std::vector<Layer>{
           {"/conv1/Conv", "input", "onnx::Conv_35", 2.5f},
           {"/conv2/Conv", "/pool/MaxPool_output_0", "onnx::Conv_38", 1.75f},
           {"/conv3/Conv", "/pool_1/MaxPool_output_0", "conv3.weight", 3.0f},
           {"/fc1/Gemm", "/Flatten_output_0", "fc1.weight", 0.5f},
           {"/fc2/Gemm", "/Relu_3_output_0", "fc2.weight", 4.0f},
       }) {
    SCOPED_TRACE(l.node);
    const Qdq in = QdqFeeding(g, l.node, 0);
    EXPECT_EQ(in.source, l.input);
    EXPECT_EQ(in.axis, -1);
    EXPECT_THAT(in.scale, ElementsAreArray({l.amax / 127.0f}));
    EXPECT_EQ(in.zero_point_type, onnx::TensorProto::INT8);

    // Weights per channel on axis 0 (Conv, Gemm transB=1), amax from the BN-folded initializer.
    const Qdq w = QdqFeeding(g, l.node, 1);
    EXPECT_EQ(w.source, l.weight);
    EXPECT_EQ(w.axis, 0);
    const onnx::TensorProto* init = Initializer(model.graph(), l.weight);
    ASSERT_NE(init, nullptr);
    EXPECT_THAT(w.scale, ElementsAreArray(ReferenceWeightScale(*init, 0)));
    EXPECT_EQ(w.zero_point.size(), static_cast<size_t>(init->dims(0)));
    EXPECT_EQ(w.zero_point_type, onnx::TensorProto::INT8);
  }
  // Names follow the quantizers.
  EXPECT_EQ(QdqFeeding(g, "/conv1/Conv", 0).q->name(), "conv1._input_quantizer/QuantizeLinear");
  EXPECT_EQ(QdqFeeding(g, "/conv1/Conv", 1).dq->name(), "conv1._weight_quantizer/DequantizeLinear");
  EXPECT_EQ(QdqFeeding(g, "/conv1/Conv", 1).q->input(1), "conv1._weight_quantizer/scale");
}

AmaxTable ResNetBlockTable() {
  return InputTable({{"conv1", 1.0f},
                     {"layer1.0.conv1", 2.0f},
                     {"layer1.0.conv2", 3.0f},
                     {"layer1.1.conv1", 4.0f},
                     {"layer1.1.conv2", 5.0f},
                     {"layer1.1.downsample.0", 6.0f},
                     {"classifier.1", 7.0f}});
}

// TensorRT: one pair per tensor, shared by every quantized reader, at their largest amax.
TEST(ExportQdq, SharedInputGetsOnePairPerTensorForTensorRT) {
  const onnx::ModelProto model = LoadModel("resnet_block.onnx");
  absl::StatusOr<QdqResult> r = ExportQdq(model, ResNetBlockTable(), {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const onnx::GraphProto& g = r->model.graph();
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 13);  // 6 activation tensors, 7 weights
  // layer1.1.conv1 and its downsample read the same tensor with amax 4 and 6: one pair, amax 6.
  const Qdq a = QdqFeeding(g, "/layer1/layer1.1/conv1/Conv", 0);
  const Qdq b = QdqFeeding(g, "/layer1/layer1.1/downsample/downsample.0/Conv", 0);
  EXPECT_EQ(a.source, "/layer1/layer1.0/Relu_1_output_0");
  EXPECT_EQ(a.q, b.q);
  EXPECT_THAT(a.scale, ElementsAreArray({6.0f / 127.0f}));
  EXPECT_THAT(r->warnings,
              ::testing::Contains(
                  HasSubstr("tensor '/layer1/layer1.0/Relu_1_output_0' is read through 2 "
                            "quantizers; TensorRT gets one Q/DQ pair per tensor, so all use "
                            "the largest amax 6 (of 'layer1.1.downsample.0._input_quantizer')")));
  // The residual Add of layer1.0 (no downsample): its shortcut is layer1.0.conv1's input, so it
  // reads that conv's pair; its conv-side input stays float.
  const Qdq shortcut = QdqFeeding(g, "/layer1/layer1.0/Add", 1);
  EXPECT_EQ(shortcut.q, QdqFeeding(g, "/layer1/layer1.0/conv1/Conv", 0).q);
  EXPECT_THAT(shortcut.scale, ElementsAreArray({2.0f / 127.0f}));
  const onnx::NodeProto& add = g.node(testing::NodeIndex(g, "/layer1/layer1.0/Add"));
  EXPECT_EQ(add.input(0), "/layer1/layer1.0/conv2/Conv_output_0");
  // layer1.1's Add has no residual quantizer and its shortcut (the downsample) is no conv input.
  const onnx::NodeProto& add1 = g.node(testing::NodeIndex(g, "/layer1/layer1.1/Add"));
  EXPECT_EQ(add1.input(1), "/layer1/layer1.1/downsample/downsample.0/Conv_output_0");
  const Qdq fc = QdqFeeding(g, "/classifier/classifier.1/Gemm", 1);
  EXPECT_THAT(fc.scale, ElementsAreArray(ReferenceWeightScale(
                            *Initializer(model.graph(), "classifier.1.weight"), 0)));
}

// ONNX Runtime: a dedicated pair per reader, each with its own quantizer's scale.
TEST(ExportQdq, SharedInputGetsDedicatedPairsForOnnxRuntime) {
  const onnx::ModelProto model = LoadModel("resnet_block.onnx");
  QdqOptions options;
  options.target = QdqTarget::kOnnxRuntime;
  absl::StatusOr<QdqResult> r = ExportQdq(model, ResNetBlockTable(), options);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const onnx::GraphProto& g = r->model.graph();
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 15);  // 8 activation readers, 7 weights
  const Qdq a = QdqFeeding(g, "/layer1/layer1.1/conv1/Conv", 0);
  const Qdq b = QdqFeeding(g, "/layer1/layer1.1/downsample/downsample.0/Conv", 0);
  EXPECT_EQ(b.source, a.source);
  EXPECT_NE(a.q, b.q);
  EXPECT_THAT(a.scale, ElementsAreArray({4.0f / 127.0f}));
  EXPECT_THAT(b.scale, ElementsAreArray({6.0f / 127.0f}));
  const Qdq shortcut = QdqFeeding(g, "/layer1/layer1.0/Add", 1);
  const Qdq conv = QdqFeeding(g, "/layer1/layer1.0/conv1/Conv", 0);
  EXPECT_NE(shortcut.q, conv.q);
  EXPECT_EQ(shortcut.source, conv.source);
  EXPECT_THAT(shortcut.scale, ElementsAreArray({2.0f / 127.0f}));
  // Every DequantizeLinear has exactly one reader.
  for (const auto& n : g.node()) {
    if (n.op_type() != "DequantizeLinear") continue;
    int readers = 0;
    for (const auto& m : g.node()) {
      for (const auto& in : m.input()) readers += in == n.output(0);
    }
    EXPECT_EQ(readers, 1) << n.name();
  }
}

TEST(ExportQdq, MatMulWeightInOutIsPerChannelOnTheLastAxis) {
  const onnx::ModelProto model = LoadModel("linear3d.onnx");
  absl::StatusOr<QdqResult> r = ExportQdq(model, InputTable({{"fc", 1.0f}, {"proj", 1.5f}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const onnx::GraphProto& g = r->model.graph();
  for (auto [node, weight] :
       {std::pair{"/fc/MatMul", "onnx::MatMul_10"}, std::pair{"/proj/MatMul", "onnx::MatMul_11"}}) {
    const Qdq w = QdqFeeding(g, node, 1);
    const onnx::TensorProto* init = Initializer(model.graph(), weight);
    ASSERT_EQ(init->dims_size(), 2);
    EXPECT_EQ(w.axis, 1) << node;
    EXPECT_EQ(w.scale.size(), static_cast<size_t>(init->dims(1))) << "one per output";
    EXPECT_THAT(w.scale, ElementsAreArray(ReferenceWeightScale(*init, 1))) << node;
  }
  EXPECT_THAT(QdqFeeding(g, "/proj/MatMul", 0).scale, ElementsAreArray({1.5f / 127.0f}));
  EXPECT_EQ(CountOps(g, "Add"), 1);
}

TEST(ExportQdq, GemmWithTransB0IsPerChannelOnAxis1) {
  const onnx::ModelProto model = LoadModel("gemm_transb0.onnx");
  absl::StatusOr<QdqResult> r = ExportQdq(model, InputTable({{"fc", 2.0f}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const Qdq w = QdqFeeding(r->model.graph(), "/fc/Gemm", 1);
  EXPECT_EQ(w.axis, 1);
  EXPECT_THAT(w.scale,
              ElementsAreArray(ReferenceWeightScale(*Initializer(model.graph(), "fc.weight"), 1)));
  EXPECT_EQ(w.scale.size(), 4u);
}

TEST(ExportQdq, ConvTransposeAxisDependsOnTarget) {
  const onnx::ModelProto model = LoadModel("deconv.onnx");
  const onnx::TensorProto* up = Initializer(model.graph(), "up.weight");  // [4, 3, 2, 2]
  for (auto [target, axis] :
       {std::pair{QdqTarget::kTensorRT, 0}, std::pair{QdqTarget::kOnnxRuntime, 1}}) {
    QdqOptions options;
    options.target = target;
    absl::StatusOr<QdqResult> r =
        ExportQdq(model, InputTable({{"conv1", 1.0f}, {"up", 2.0f}}), options);
    ASSERT_TRUE(r.ok()) << r.status();
    ExpectWellFormed(model, r->model);
    const Qdq w = QdqFeeding(r->model.graph(), "/up/ConvTranspose", 1);
    EXPECT_EQ(w.axis, axis);
    EXPECT_EQ(w.scale.size(), axis == 0 ? 4u : 3u);
    EXPECT_THAT(w.scale, ElementsAreArray(ReferenceWeightScale(*up, axis)));
    // Conv weights stay on axis 0 for both.
    EXPECT_EQ(QdqFeeding(r->model.graph(), "/conv1/Conv", 1).axis, 0);
  }
}

TEST(ExportQdq, AllZeroChannelAndActivationGetScaleOneWithWarnings) {
  const onnx::ModelProto model = LoadModel("dead_channel.onnx");
  absl::StatusOr<QdqResult> r = ExportQdq(model, InputTable({{"conv", 0.0f}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const onnx::GraphProto& g = r->model.graph();
  const Qdq in = QdqFeeding(g, "/conv/Conv", 0);
  EXPECT_THAT(in.scale, ElementsAreArray({1.0f}));
  const Qdq w = QdqFeeding(g, "/conv/Conv", 1);
  const std::vector<float> expected =
      ReferenceWeightScale(*Initializer(model.graph(), "conv.weight"), 0);
  EXPECT_THAT(w.scale, ElementsAreArray(expected));
  EXPECT_EQ(w.scale[1], 1.0f);
  EXPECT_GT(w.scale[0], 0.0f);
  EXPECT_NE(w.scale[0], 1.0f);
  ASSERT_EQ(r->warnings.size(), 2u);
  EXPECT_THAT(r->warnings[0], HasSubstr("quantizer 'conv._input_quantizer' tensor 'input' "
                                        "(per-tensor): amax is 0; scale written as 1"));
  EXPECT_THAT(r->warnings[1], HasSubstr("quantizer 'conv._weight_quantizer' tensor 'conv.weight' "
                                        "channel 1 (axis 0): amax is 0; scale written as 1"));
}

TEST(ExportQdq, NegativeOrNonFiniteAmaxIsAnErrorNamingQuantizerAndTensor) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  for (float bad :
       {-1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    absl::StatusOr<QdqResult> r =
        ExportQdq(model, InputTable({{"conv1", 1.0f}, {"conv2", bad}}), {});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().ToString(),
                HasSubstr("quantizer 'conv2._input_quantizer' tensor '/pool/MaxPool_output_0'"));
  }
}

TEST(ExportQdq, PerTensorInputWithSeveralAmaxValuesIsAnError) {
  const onnx::ModelProto model = LoadModel("dead_channel.onnx");
  AmaxTable table;
  table.quantizers["conv._input_quantizer"] = AmaxEntry("conv._input_quantizer", {1.0f, 2.0f});
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().ToString(),
              HasSubstr("quantizer 'conv._input_quantizer' has 2 amax values"));
}

TEST(ExportQdq, WeightEntryWithWrongChannelCountIsAnError) {
  const onnx::ModelProto model = LoadModel("dead_channel.onnx");  // conv.weight [3, 2, 3, 3]
  AmaxTable table = InputTable({{"conv", 1.0f}});
  QuantizerAmax weight = AmaxEntry("conv._weight_quantizer", {0.1f, 0.2f});
  weight.axis = 0;
  table.quantizers[weight.name] = weight;
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().ToString(),
              HasSubstr("quantizer 'conv._weight_quantizer' has 2 per-channel amax values on axis "
                        "0 but weight 'conv.weight' has 3 channels there"));
  // A negative amax in the weight entry is refused too, though the export recomputes weight amax.
  table.quantizers[weight.name].amax = {0.1f, -0.2f, 0.3f};
  r = ExportQdq(model, table, {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().ToString(), HasSubstr("channel 1 (axis 0): amax -0.2 is negative"));
}

TEST(ExportQdq, WeightFormatFromTableElseOptions) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  AmaxTable table = InputTable({{"conv1", 1.0f}, {"conv2", 1.0f}});
  table.quantizers["conv1._input_quantizer"].is_unsigned = true;  // after nothing: raw input
  QuantizerAmax w = AmaxEntry("conv2._weight_quantizer", {});
  w.is_unsigned = true;
  table.quantizers[w.name] = w;
  QdqOptions ort;
  ort.target = QdqTarget::kOnnxRuntime;
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, ort);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const onnx::GraphProto& g = r->model.graph();
  const Qdq in = QdqFeeding(g, "/conv1/Conv", 0);
  EXPECT_EQ(in.zero_point_type, onnx::TensorProto::UINT8);
  EXPECT_THAT(in.scale, ElementsAreArray({1.0f / 255.0f}));
  const Qdq w2 = QdqFeeding(g, "/conv2/Conv", 1);
  EXPECT_EQ(w2.zero_point_type, onnx::TensorProto::UINT8);
  EXPECT_THAT(w2.scale, ElementsAreArray(ReferenceWeightScale(
                            *Initializer(model.graph(), "onnx::Conv_38"), 0, 255)));
  EXPECT_EQ(QdqFeeding(g, "/conv1/Conv", 1).zero_point_type, onnx::TensorProto::INT8);

  QdqOptions options;
  options.target = QdqTarget::kOnnxRuntime;
  options.default_weight_unsigned = true;
  r = ExportQdq(model, InputTable({{"conv1", 1.0f}}), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(QdqFeeding(r->model.graph(), "/conv1/Conv", 1).zero_point_type,
            onnx::TensorProto::UINT8);
}

// TensorRT's INT8 is signed: unsigned quantizers are written as int8 with scale amax / 127 and a
// warning, as the TensorRT calibration cache does.
TEST(ExportQdq, UnsignedIsSignedInt8ForTensorRT) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  AmaxTable table = InputTable({{"conv1", 1.0f}, {"conv2", 2.0f}});
  table.quantizers["conv1._input_quantizer"].is_unsigned = true;
  QuantizerAmax w = AmaxEntry("conv2._weight_quantizer", {});
  w.is_unsigned = true;
  table.quantizers[w.name] = w;
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const onnx::GraphProto& g = r->model.graph();
  const Qdq in = QdqFeeding(g, "/conv1/Conv", 0);
  EXPECT_EQ(in.zero_point_type, onnx::TensorProto::INT8);
  EXPECT_THAT(in.scale, ElementsAreArray({1.0f / 127.0f}));
  const Qdq w2 = QdqFeeding(g, "/conv2/Conv", 1);
  EXPECT_EQ(w2.zero_point_type, onnx::TensorProto::INT8);
  EXPECT_THAT(w2.scale, ElementsAreArray(ReferenceWeightScale(
                            *Initializer(model.graph(), "onnx::Conv_38"), 0, 127)));
  const std::string why =
      "' is unsigned; TensorRT's INT8 is signed, so it is written as signed INT8 (scale amax / "
      "127, zero point int8 0); export with target onnxruntime to keep uint8";
  EXPECT_THAT(r->warnings, ::testing::Contains("quantizer 'conv1._input_quantizer" + why));
  EXPECT_THAT(r->warnings, ::testing::Contains("quantizer 'conv2._weight_quantizer" + why));
  EXPECT_EQ(r->explain[0].reason, "per-tensor int8, amax 1, scale 0.00787402");
}

TEST(ExportQdq, OnlyEightBitsFitOpset13) {
  const onnx::ModelProto model = LoadModel("dead_channel.onnx");
  AmaxTable table = InputTable({{"conv", 1.0f}});
  table.quantizers["conv._input_quantizer"].num_bits = 4;
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().ToString(), HasSubstr("quantizer 'conv._input_quantizer' has num_bits 4"));
  QdqOptions options;
  options.default_weight_num_bits = 6;
  r = ExportQdq(model, InputTable({{"conv", 1.0f}}), options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().ToString(),
              HasSubstr("quantizer 'conv._weight_quantizer' has num_bits 6"));
}

TEST(ExportQdq, UncalibratedAndUnmatchedQuantizersAreReported) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  AmaxTable table = InputTable({{"conv1", 1.0f}, {"nosuch", 1.0f}});
  table.quantizers["conv2._input_quantizer"] = AmaxEntry("conv2._input_quantizer", {});
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  EXPECT_EQ(CountOps(r->model.graph(), "QuantizeLinear"), 2);
  const onnx::NodeProto& conv2 =
      r->model.graph().node(testing::NodeIndex(r->model.graph(), "/conv2/Conv"));
  EXPECT_EQ(conv2.input(0), "/pool/MaxPool_output_0") << "uncalibrated: stays float";
  EXPECT_EQ(conv2.input(1), "onnx::Conv_38");
  ASSERT_EQ(r->warnings.size(), 2u);
  EXPECT_THAT(r->warnings[0], HasSubstr("'conv2._input_quantizer' has no amax"));
  EXPECT_THAT(r->warnings[1], HasSubstr("'nosuch._input_quantizer' matches no Conv"));
}

TEST(ExportQdq, NothingToExportIsAFailedPrecondition) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  absl::StatusOr<QdqResult> r = ExportQdq(model, InputTable({{"other", 1.0f}}), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().ToString(), HasSubstr("no calibrated input quantizer of model 'm'"));
}

TEST(ExportQdq, RefusesOpset11) {
  // ParseOnnxModel refuses it already; ExportQdq checks on its own for models built elsewhere.
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(testing::ReadTestdata("opset11.onnx")));
  absl::StatusOr<QdqResult> r = ExportQdq(model, InputTable({{"conv1", 1.0f}}), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().ToString(), HasSubstr("opset 11"));
}

TEST(ExportQdq, ExplicitPairsOverrideTheMatching) {
  const onnx::ModelProto model = LoadModel("dead_channel.onnx");
  QdqOptions options;
  options.explicit_pairs = {{"stem._input_quantizer", "input"}};
  absl::StatusOr<QdqResult> r = ExportQdq(model, InputTable({{"stem", 3.0f}}), options);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const Qdq in = QdqFeeding(r->model.graph(), "/conv/Conv", 0);
  EXPECT_EQ(in.q->name(), "stem._input_quantizer/QuantizeLinear");
  EXPECT_THAT(in.scale, ElementsAreArray({3.0f / 127.0f}));
  EXPECT_EQ(QdqFeeding(r->model.graph(), "/conv/Conv", 1).q->name(),
            "stem._weight_quantizer/QuantizeLinear");

  // A pair may name a quantizer without a table entry: conv's own input quantizer loses the
  // node it claims, and the pair exports nothing.
  options.explicit_pairs = {{"stem._input_quantizer", "input"}};
  r = ExportQdq(model, InputTable({{"conv", 2.0f}}), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  options.explicit_pairs = {{"stem._weight_quantizer", "conv.weight"}};
  r = ExportQdq(model, InputTable({{"conv", 2.0f}}), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(QdqFeeding(r->model.graph(), "/conv/Conv", 0).scale,
              ElementsAreArray({2.0f / 127.0f}));
  EXPECT_EQ(QdqFeeding(r->model.graph(), "/conv/Conv", 1).q->name(),
            "stem._weight_quantizer/QuantizeLinear");

  // A pair pointing at a tensor that is no data input is refused.
  options.explicit_pairs = {{"stem._input_quantizer", "output"}};
  r = ExportQdq(model, InputTable({{"stem", 3.0f}}), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ExportQdq, NewNamesNeverCollideWithExistingOnes) {
  onnx::ModelProto model = LoadModel("dead_channel.onnx");
  // Take the names the export would pick: the graph output and the node.
  onnx::GraphProto* g = model.mutable_graph();
  g->mutable_node(0)->set_name("conv._input_quantizer/QuantizeLinear");
  g->mutable_node(0)->set_output(0, "conv._input_quantizer/DequantizeLinear_output_0");
  g->mutable_output(0)->set_name("conv._input_quantizer/DequantizeLinear_output_0");
  onnx::TensorProto* bias = g->mutable_initializer(1);
  ASSERT_EQ(bias->name(), "conv.bias");
  bias->set_name("conv._weight_quantizer/scale");
  g->mutable_node(0)->set_input(2, "conv._weight_quantizer/scale");
  ASSERT_TRUE(CheckOnnxModel(model).ok()) << CheckOnnxModel(model);
  // The node name has no scope now: it binds by its weight's name, conv.weight.
  absl::StatusOr<QdqResult> r = ExportQdq(model, InputTable({{"conv", 1.0f}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const Qdq in = QdqFeeding(r->model.graph(), "conv._input_quantizer/QuantizeLinear", 0);
  EXPECT_EQ(in.q->name(), "conv._input_quantizer/QuantizeLinear_1");
  EXPECT_EQ(in.dq->output(0), "conv._input_quantizer/DequantizeLinear_output_0_1");
  const Qdq w = QdqFeeding(r->model.graph(), "conv._input_quantizer/QuantizeLinear", 1);
  EXPECT_EQ(w.q->input(1), "conv._weight_quantizer/scale_1");
}

TEST(ExportQdq, RepeatedCallQuantizesBothInputsAndSharesTheWeightPair) {
  const onnx::ModelProto model = LoadModel("reuse.onnx");
  absl::StatusOr<QdqResult> r = ExportQdq(model, InputTable({{"fc", 2.0f}, {"head", 1.0f}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWellFormed(model, r->model);
  const onnx::GraphProto& g = r->model.graph();
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 5);
  const Qdq first = QdqFeeding(g, "/fc/Gemm", 0);
  const Qdq second = QdqFeeding(g, "/fc_1/Gemm", 0);
  EXPECT_EQ(first.source, "input");
  EXPECT_EQ(second.source, "/Relu_output_0");
  EXPECT_THAT(second.scale, ElementsAreArray({2.0f / 127.0f}));
  EXPECT_EQ(QdqFeeding(g, "/fc/Gemm", 1).dq, QdqFeeding(g, "/fc_1/Gemm", 1).dq);
}

TEST(ExportQdq, WeightThatIsNoInitializerIsAnError) {
  onnx::ModelProto model = LoadModel("dead_channel.onnx");
  // Turn conv.weight into a graph input.
  onnx::GraphProto* g = model.mutable_graph();
  onnx::ValueInfoProto* input = g->add_input();
  input->set_name("conv.weight");
  input->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {3, 2, 3, 3}) {
    input->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  }
  g->mutable_initializer()->erase(g->mutable_initializer()->begin());
  ASSERT_TRUE(CheckOnnxModel(model).ok()) << CheckOnnxModel(model);
  absl::StatusOr<QdqResult> r = ExportQdq(model, InputTable({{"conv", 1.0f}}), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().ToString(), HasSubstr("weight 'conv.weight' is not an initializer"));
}

}  // namespace
}  // namespace qcal::server
