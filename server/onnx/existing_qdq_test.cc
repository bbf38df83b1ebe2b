#include "server/onnx/existing_qdq.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "server/onnx/onnx_model.h"
#include "server/onnx/testing.h"

namespace qcal::server {
namespace {

using testing::AmaxEntry;
using testing::AmaxTableOf;
using testing::CountOps;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::Initializer;
using testing::IntAttr;
using testing::LoadModel;
using testing::NodeIndex;
using testing::ReferenceWeightScale;
using testing::Values;

const onnx::NodeProto& Node(const onnx::GraphProto& graph, const std::string& name) {
  const int i = NodeIndex(graph, name);
  EXPECT_GE(i, 0) << "no node " << name;
  static const onnx::NodeProto kNone;
  return i < 0 ? kNone : graph.node(i);
}

// The value of a constant tensor: an initializer or a Constant node's `value`.
const onnx::TensorProto* Constant(const onnx::GraphProto& graph, const std::string& name) {
  if (const onnx::TensorProto* t = Initializer(graph, name)) return t;
  const onnx::NodeProto* node = testing::Producer(graph, name);
  if (node == nullptr || node->op_type() != "Constant") return nullptr;
  return &node->attribute(0).t();
}

std::vector<float> ConstantValues(const onnx::GraphProto& graph, const std::string& name) {
  const onnx::TensorProto* t = Constant(graph, name);
  EXPECT_NE(t, nullptr) << "no constant " << name;
  return t == nullptr ? std::vector<float>{} : Values(*t);
}

const ExistingPair* PairOf(const ExistingQdq& r, const std::string& q_node) {
  for (const ExistingPair& p : r.pairs) {
    if (p.q_node == q_node) return &p;
  }
  ADD_FAILURE() << "no pair for " << q_node;
  return nullptr;
}

// pytorch-quantization's export: scopes name the quantizers; conv2's input pair is uint8 in the
// model, fc is not in the table.
TEST(RewriteExistingQdq, PytorchQuantizationModelGetsTheTablesScales) {
  const onnx::ModelProto model = LoadModel("qdq_pq.onnx");
  const AmaxTable table = AmaxTableOf({{"conv1._input_quantizer", {3.0f}},
                                       {"conv2._input_quantizer", {1.5f}},
                                       {"conv1._weight_quantizer", {9.0f, 9.0f, 9.0f, 9.0f}}});
  absl::StatusOr<ExistingQdq> r = RewriteExistingQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  const onnx::GraphProto& g = r->model.graph();
  ASSERT_TRUE(CheckOnnxModel(r->model).ok());
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), CountOps(model.graph(), "QuantizeLinear"));
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 6);
  EXPECT_EQ(CountOps(g, "DequantizeLinear"), 6);
  EXPECT_EQ(r->rewritten, 4);

  for (const auto& [scope, amax] :
       {std::pair{"/conv1/_input_quantizer/", 3.0f}, std::pair{"/conv2/_input_quantizer/", 1.5f}}) {
    const onnx::NodeProto& q = Node(g, std::string(scope) + "QuantizeLinear");
    const onnx::NodeProto& dq = Node(g, std::string(scope) + "DequantizeLinear");
    EXPECT_THAT(ConstantValues(g, q.input(1)), ElementsAre(amax / 127.0f)) << scope;
    EXPECT_EQ(q.input(1), dq.input(1));
    EXPECT_EQ(q.input(2), dq.input(2));
    // Signed in the table: int8 zero point 0, also for conv2 whose model pair was uint8.
    EXPECT_EQ(Constant(g, q.input(2))->data_type(), onnx::TensorProto::INT8) << scope;
    EXPECT_THAT(ConstantValues(g, q.input(2)), ElementsAre(0.0f));
    EXPECT_EQ(IntAttr(q, "axis", -1), -1);
  }
  EXPECT_EQ(Node(g, "/conv1/_input_quantizer/QuantizeLinear").input(1),
            "conv1._input_quantizer/scale");
  const ExistingPair* in1 = PairOf(*r, "/conv1/_input_quantizer/QuantizeLinear");
  ASSERT_NE(in1, nullptr);
  EXPECT_EQ(in1->decision, ExistingDecision::kRewritten);
  EXPECT_EQ(in1->quantizer, "conv1._input_quantizer");
  EXPECT_EQ(in1->tensor, "input");
  EXPECT_THAT(in1->scale, ElementsAre(3.0f / 127.0f));
  ASSERT_EQ(in1->consumers.size(), 1u);
  EXPECT_EQ(in1->consumers[0].node, "/conv1/Conv");
  EXPECT_EQ(in1->consumers[0].input, 0);
  EXPECT_EQ(in1->consumers[0].tensor, "/conv1/_input_quantizer/DequantizeLinear_output_0");

  // Weights: max |w| of the initializer per channel on the pair's axis (the table's 9.0 is not
  // used, as for the export's new weight pairs); conv2's weight follows conv2's input quantizer.
  for (const auto& [module, quantizer] : {std::pair{"conv1", "conv1._weight_quantizer"},
                                          std::pair{"conv2", "conv2._weight_quantizer"}}) {
    const std::string scope = absl::StrCat("/", module, "/_weight_quantizer/");
    const onnx::NodeProto& q = Node(g, scope + "QuantizeLinear");
    const onnx::NodeProto& dq = Node(g, scope + "DequantizeLinear");
    const onnx::TensorProto* w = Initializer(g, absl::StrCat(module, ".weight"));
    ASSERT_NE(w, nullptr);
    EXPECT_THAT(ConstantValues(g, q.input(1)), ElementsAreArray(ReferenceWeightScale(*w, 0)))
        << module;
    EXPECT_EQ(IntAttr(q, "axis", -1), 0);
    EXPECT_EQ(IntAttr(dq, "axis", -1), 0);
    EXPECT_EQ(dq.input(1), q.input(1));
    const ExistingPair* p = PairOf(*r, scope + "QuantizeLinear");
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->decision, ExistingDecision::kRewritten);
    EXPECT_EQ(p->quantizer, quantizer);
    EXPECT_TRUE(p->is_weight);
    EXPECT_EQ(p->axis, 0);
  }

  // fc: not in the table, kept as exported (its Constant scale 4.0 / 127), explained and warned.
  for (const char* kind : {"_input_quantizer", "_weight_quantizer"}) {
    const std::string q_name = absl::StrCat("/fc/", kind, "/QuantizeLinear");
    const ExistingPair* p = PairOf(*r, q_name);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->decision, ExistingDecision::kKept);
    EXPECT_EQ(p->quantizer, absl::StrCat("fc.", kind));
    EXPECT_EQ(Node(g, q_name).input(1), Node(model.graph(), q_name).input(1));
  }
  EXPECT_THAT(ConstantValues(g, Node(g, "/fc/_input_quantizer/QuantizeLinear").input(1)),
              ElementsAre(4.0f / 127.0f));
  EXPECT_THAT(PairOf(*r, "/fc/_input_quantizer/QuantizeLinear")->reason,
              HasSubstr("the table has no quantizer 'fc._input_quantizer'"));
  int kept_warnings = 0;
  for (const std::string& w : r->warnings) {
    if (w.find("/fc/_input_quantizer/QuantizeLinear") != std::string::npos &&
        w.find("kept as it is") != std::string::npos) {
      ++kept_warnings;
    }
  }
  EXPECT_EQ(kept_warnings, 1);
  // The replaced Constant scales and zero points are gone; fc's stay.
  EXPECT_EQ(NodeIndex(g, "/conv1/_input_quantizer/Constant_1"), -1);
  EXPECT_EQ(Initializer(g, Node(model.graph(), "/conv1/_weight_quantizer/QuantizeLinear").input(1)),
            nullptr);
  EXPECT_GE(NodeIndex(g, "/fc/_input_quantizer/Constant_1"), 0);
}

// A nested module called twice: torch.onnx scopes the second call's quantizer
// "/layer/layer.0/_input_quantizer_1/..." (a repeated-call suffix), and both Gemms read one
// weight pair.
TEST(RewriteExistingQdq, RepeatedCallOfANestedModuleMapsToItsQuantizer) {
  const onnx::ModelProto model = LoadModel("qdq_pq_reuse.onnx");
  const AmaxTable table = AmaxTableOf({{"layer.0._input_quantizer", {0.5f}}});
  absl::StatusOr<ExistingQdq> r = RewriteExistingQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  const onnx::GraphProto& g = r->model.graph();
  ASSERT_TRUE(CheckOnnxModel(r->model).ok());
  EXPECT_EQ(r->rewritten, 3);
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 3);
  for (const char* q : {"/layer/layer.0/_input_quantizer/QuantizeLinear",
                        "/layer/layer.0/_input_quantizer_1/QuantizeLinear"}) {
    const ExistingPair* p = PairOf(*r, q);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->quantizer, "layer.0._input_quantizer") << q;
    EXPECT_THAT(ConstantValues(g, Node(g, q).input(1)), ElementsAre(0.5f / 127.0f)) << q;
  }
  const ExistingPair* w = PairOf(*r, "/layer/layer.0/_weight_quantizer/QuantizeLinear");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->quantizer, "layer.0._weight_quantizer");
  ASSERT_EQ(w->consumers.size(), 2u);
  EXPECT_EQ(w->consumers[0].node, "/layer/layer.0/Gemm");
  EXPECT_EQ(w->consumers[1].node, "/layer/layer.0_1/Gemm");
  EXPECT_EQ(w->consumers[1].input, 1);
  EXPECT_THAT(w->scale,
              ElementsAreArray(ReferenceWeightScale(*Initializer(g, "layer.0.weight"), 0)));
}

TEST(RewriteExistingQdq, UnsignedQuantizerIsUint8ForOnnxRuntimeAndSignedInt8ForTensorRT) {
  const onnx::ModelProto model = LoadModel("qdq_pq.onnx");
  AmaxTable table = AmaxTableOf({{"conv1._input_quantizer", {2.0f}}});
  table.quantizers["conv1._input_quantizer"].is_unsigned = true;
  QdqOptions ort;
  ort.target = QdqTarget::kOnnxRuntime;
  absl::StatusOr<ExistingQdq> r = RewriteExistingQdq(model, table, ort);
  ASSERT_TRUE(r.ok()) << r.status();
  const onnx::GraphProto& g = r->model.graph();
  const onnx::NodeProto& q = Node(g, "/conv1/_input_quantizer/QuantizeLinear");
  EXPECT_THAT(ConstantValues(g, q.input(1)), ElementsAre(2.0f / 255.0f));
  EXPECT_EQ(Constant(g, q.input(2))->data_type(), onnx::TensorProto::UINT8);
  ASSERT_TRUE(CheckOnnxModel(r->model).ok());

  absl::StatusOr<ExistingQdq> trt = RewriteExistingQdq(model, table, {});  // kTensorRT
  ASSERT_TRUE(trt.ok()) << trt.status();
  const onnx::GraphProto& tg = trt->model.graph();
  const onnx::NodeProto& tq = Node(tg, "/conv1/_input_quantizer/QuantizeLinear");
  EXPECT_THAT(ConstantValues(tg, tq.input(1)), ElementsAre(2.0f / 127.0f));
  EXPECT_EQ(Constant(tg, tq.input(2))->data_type(), onnx::TensorProto::INT8);
  int signed_warnings = 0;
  for (const std::string& w : trt->warnings) {
    signed_warnings += w.find("'conv1._input_quantizer' is unsigned; TensorRT's INT8 is signed") !=
                       std::string::npos;
  }
  EXPECT_EQ(signed_warnings, 1);
}

TEST(RewriteExistingQdq, UncalibratedQuantizerIsKeptWithItsReason) {
  const onnx::ModelProto model = LoadModel("qdq_pq.onnx");
  const AmaxTable table = AmaxTableOf({{"conv1._input_quantizer", {}}});
  absl::StatusOr<ExistingQdq> r = RewriteExistingQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rewritten, 0);
  const ExistingPair* p = PairOf(*r, "/conv1/_input_quantizer/QuantizeLinear");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->decision, ExistingDecision::kKept);
  EXPECT_THAT(p->reason, HasSubstr("not calibrated"));
  // Nothing rewritten: no copy of the model (the export uses its input).
  EXPECT_EQ(r->model.graph().node_size(), 0);
}

// Another tool: no scopes; pairs map to quantizers by the Conv nodes reading them. One scale
// initializer, act_scale, is shared by the pairs of Conv_1's and Conv_2's inputs.
TEST(RewriteExistingQdq, OtherToolModelMapsByConsumersAndKeepsTheSharedScaleForOthers) {
  const onnx::ModelProto model = LoadModel("qdq_other_tool.onnx");
  const AmaxTable table = AmaxTableOf({{"conv1._input_quantizer", {3.0f}}});
  absl::StatusOr<ExistingQdq> r = RewriteExistingQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  const onnx::GraphProto& g = r->model.graph();
  ASSERT_TRUE(CheckOnnxModel(r->model).ok());
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 3);
  EXPECT_EQ(CountOps(g, "DequantizeLinear"), 4);
  EXPECT_EQ(r->rewritten, 2);

  const ExistingPair* in1 = PairOf(*r, "QuantizeLinear_0");
  ASSERT_NE(in1, nullptr);
  EXPECT_EQ(in1->decision, ExistingDecision::kRewritten);
  EXPECT_EQ(in1->quantizer, "conv1._input_quantizer");
  EXPECT_THAT(in1->reason, HasSubstr("consumers"));
  EXPECT_THAT(ConstantValues(g, Node(g, "QuantizeLinear_0").input(1)), ElementsAre(3.0f / 127.0f));
  EXPECT_EQ(Node(g, "DequantizeLinear_0").input(1), Node(g, "QuantizeLinear_0").input(1));

  // The weight behind Conv_1's DequantizeLinear: module conv1 by the name conv1.weight.
  const ExistingPair* w1 = PairOf(*r, "QuantizeLinear_1");
  ASSERT_NE(w1, nullptr);
  EXPECT_EQ(w1->decision, ExistingDecision::kRewritten);
  EXPECT_EQ(w1->quantizer, "conv1._weight_quantizer");
  EXPECT_THAT(ConstantValues(g, Node(g, "QuantizeLinear_1").input(1)),
              ElementsAreArray(ReferenceWeightScale(*Initializer(g, "conv1.weight"), 0)));

  // Conv_2's input pair is not covered: it still reads act_scale, whose value is unchanged.
  const ExistingPair* in2 = PairOf(*r, "QuantizeLinear_2");
  ASSERT_NE(in2, nullptr);
  EXPECT_EQ(in2->decision, ExistingDecision::kKept);
  EXPECT_EQ(in2->quantizer, "conv2._input_quantizer");
  EXPECT_EQ(Node(g, "QuantizeLinear_2").input(1), "act_scale");
  EXPECT_EQ(Node(g, "DequantizeLinear_2").input(1), "act_scale");
  EXPECT_THAT(ConstantValues(g, "act_scale"), ElementsAre(0.05f));

  // The int8 weight with only a DequantizeLinear is pre-quantized: kept.
  const ExistingPair* w2 = nullptr;
  for (const ExistingPair& p : r->pairs) {
    if (p.q_node.empty()) w2 = &p;
  }
  ASSERT_NE(w2, nullptr);
  EXPECT_THAT(w2->dq_nodes, ElementsAre("DequantizeLinear_3"));
  EXPECT_EQ(w2->decision, ExistingDecision::kKept);
  EXPECT_THAT(w2->reason, HasSubstr("pre-quantized"));
  EXPECT_EQ(r->pairs.size(), 4u);
}

TEST(RewriteExistingQdq, SharedScaleRemovedOnceNoPairReadsIt) {
  const onnx::ModelProto model = LoadModel("qdq_other_tool.onnx");
  const AmaxTable table =
      AmaxTableOf({{"conv1._input_quantizer", {3.0f}}, {"conv2._input_quantizer", {6.0f}}});
  absl::StatusOr<ExistingQdq> r = RewriteExistingQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  const onnx::GraphProto& g = r->model.graph();
  ASSERT_TRUE(CheckOnnxModel(r->model).ok());
  EXPECT_EQ(r->rewritten, 3);
  EXPECT_THAT(ConstantValues(g, Node(g, "QuantizeLinear_0").input(1)), ElementsAre(3.0f / 127.0f));
  EXPECT_THAT(ConstantValues(g, Node(g, "QuantizeLinear_2").input(1)), ElementsAre(6.0f / 127.0f));
  EXPECT_NE(Node(g, "QuantizeLinear_0").input(1), Node(g, "QuantizeLinear_2").input(1));
  EXPECT_EQ(Initializer(g, "act_scale"), nullptr);
  EXPECT_EQ(Initializer(g, "act_zp"), nullptr);
}

TEST(RewriteExistingQdq, ExplicitPairNamesTheQuantizer) {
  const onnx::ModelProto model = LoadModel("qdq_other_tool.onnx");
  const AmaxTable table = AmaxTableOf({{"stem._input_quantizer", {2.0f}}});
  QdqOptions options;
  options.explicit_pairs = {{"stem._input_quantizer", "input"}};
  absl::StatusOr<ExistingQdq> r = RewriteExistingQdq(model, table, options);
  ASSERT_TRUE(r.ok()) << r.status();
  const ExistingPair* p = PairOf(*r, "QuantizeLinear_0");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->decision, ExistingDecision::kRewritten);
  EXPECT_EQ(p->quantizer, "stem._input_quantizer");
  EXPECT_THAT(p->scale, ElementsAre(2.0f / 127.0f));
}

TEST(RewriteExistingQdq, RefusesNumBitsOtherThan8NamingNodeTensorAndQuantizer) {
  const onnx::ModelProto model = LoadModel("qdq_pq.onnx");
  AmaxTable table = AmaxTableOf({{"conv1._input_quantizer", {3.0f}}});
  table.quantizers["conv1._input_quantizer"].num_bits = 4;
  absl::StatusOr<ExistingQdq> r = RewriteExistingQdq(model, table, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("QuantizeLinear '/conv1/_input_quantizer/QuantizeLinear'"));
  EXPECT_THAT(r.status().message(), HasSubstr("tensor 'input'"));
  EXPECT_THAT(r.status().message(), HasSubstr("quantizer 'conv1._input_quantizer'"));
  EXPECT_THAT(r.status().message(), HasSubstr("num_bits 4"));
}

TEST(RewriteExistingQdq, RefusesANegativeAmax) {
  const onnx::ModelProto model = LoadModel("qdq_pq.onnx");
  const AmaxTable table = AmaxTableOf({{"conv2._input_quantizer", {-1.0f}}});
  absl::StatusOr<ExistingQdq> r = RewriteExistingQdq(model, table, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("/conv2/_input_quantizer/QuantizeLinear"));
}

// Through the export: its FAILED_PRECONDITION ("no calibrated input quantizer matches") does not
// fire when existing pairs were rewritten, and the kept pairs' warnings reach QdqResult.
TEST(ExportQdqWithExistingPairs, OtherToolModelExportsItsRewrittenPairs) {
  const onnx::ModelProto model = LoadModel("qdq_other_tool.onnx");
  const AmaxTable table = AmaxTableOf({{"conv1._input_quantizer", {3.0f}}});
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  const onnx::GraphProto& g = r->model.graph();
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 3);
  EXPECT_THAT(ConstantValues(g, Node(g, "QuantizeLinear_0").input(1)), ElementsAre(3.0f / 127.0f));
  int kept = 0;
  for (const std::string& w : r->warnings) kept += w.find("kept as it is") != std::string::npos;
  EXPECT_EQ(kept, 2);  // QuantizeLinear_2 and DequantizeLinear_3
}

// The export's planner leaves inputs already fed by a DequantizeLinear to the rewrite; explain
// says REWRITTEN or KEPT for them.
TEST(ExportQdqWithExistingPairs, PytorchQuantizationModelInsertsNothingTwice) {
  const onnx::ModelProto model = LoadModel("qdq_pq.onnx");
  const AmaxTable table = AmaxTableOf({{"conv1._input_quantizer", {3.0f}},
                                       {"conv2._input_quantizer", {}},
                                       {"fc._input_quantizer", {5.0f}}});
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  const onnx::GraphProto& g = r->model.graph();
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 6);
  EXPECT_EQ(CountOps(g, "DequantizeLinear"), 6);
  EXPECT_THAT(ConstantValues(g, Node(g, "/fc/_input_quantizer/QuantizeLinear").input(1)),
              ElementsAre(5.0f / 127.0f));
  std::map<std::pair<std::string, int>, const ExplainEntry*> explain;
  for (const ExplainEntry& e : r->explain) explain[{e.node, e.input}] = &e;
  ASSERT_TRUE(explain.contains({"/fc/Gemm", 0}));
  EXPECT_EQ(explain.at({"/fc/Gemm", 0})->decision, ExplainDecision::kRewritten);
  EXPECT_EQ(explain.at({"/fc/Gemm", 0})->quantizer, "fc._input_quantizer");
  ASSERT_TRUE(explain.contains({"/conv2/Conv", 0}));
  EXPECT_EQ(explain.at({"/conv2/Conv", 0})->decision, ExplainDecision::kKept);
  EXPECT_EQ(explain.at({"/conv2/Conv", 0})->quantizer, "conv2._input_quantizer");
  EXPECT_THAT(explain.at({"/conv2/Conv", 0})->reason, HasSubstr("not calibrated"));
}

// Opsets: 13..17 in, 18 refused at upload (ParseOnnxModel, also ExportOnnx's own model) and by
// the export.
constexpr char kOpset18Message[] =
    "opset 18 is above 17, the highest this server's ONNX 1.12 can check; export at opset 13..17";

TEST(ExistingQdqOpset, Opset17ExportIsAcceptedAndRewritten) {
  const onnx::ModelProto model = LoadModel("qdq_pq_opset17.onnx");
  EXPECT_EQ(DefaultOpset(model), 17);
  absl::StatusOr<ExistingQdq> r =
      RewriteExistingQdq(model, AmaxTableOf({{"conv1._input_quantizer", {3.0f}}}), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rewritten, 2);
}

TEST(ExistingQdqOpset, Opset18IsRefusedAtUploadAndExport) {
  onnx::ModelProto model = LoadModel("qdq_pq_opset17.onnx");
  model.mutable_opset_import(0)->set_version(18);
  absl::StatusOr<onnx::ModelProto> parsed = ParseOnnxModel(model.SerializeAsString());
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr(kOpset18Message));
  EXPECT_THAT(parsed.status().message(), HasSubstr("ONNX model has opset 18"));

  absl::StatusOr<QdqResult> exported =
      ExportQdq(model, AmaxTableOf({{"conv1._input_quantizer", {3.0f}}}), {});
  ASSERT_FALSE(exported.ok());
  EXPECT_EQ(exported.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(exported.status().message(), HasSubstr(kOpset18Message));
}

}  // namespace
}  // namespace qcal::server
