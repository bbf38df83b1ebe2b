// One test per placement rule of ExportQdq (qdq_export.h), on hand-built graphs
// (test_graphs.h), with the explain entries each rule writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/onnx/onnx_model.h"
#include "server/onnx/qdq_export.h"
#include "server/onnx/test_graphs.h"
#include "server/onnx/testing.h"

namespace qcal::server {
namespace {

using ::testing::Contains;
using testing::CountOps;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Initializer;
using testing::NodeIndex;
using ::testing::Not;
using testing::Producer;
using testing::Values;

AmaxTable Table(const std::map<std::string, float>& amax) {
  AmaxTable table;
  table.model = "m";
  table.method = "max";
  for (const auto& [name, a] : amax) table.quantizers[name] = testing::AmaxEntry(name, {a});
  return table;
}

// The QuantizeLinear whose pair feeds input `slot` of `node`; nullptr when that input is float.
const onnx::NodeProto* QFeeding(const onnx::GraphProto& g, const std::string& node, int slot) {
  const int i = NodeIndex(g, node);
  EXPECT_GE(i, 0) << node;
  if (i < 0) return nullptr;
  const onnx::NodeProto* dq = Producer(g, g.node(i).input(slot));
  if (dq == nullptr || dq->op_type() != "DequantizeLinear") return nullptr;
  const onnx::NodeProto* q = Producer(g, dq->input(0));
  EXPECT_TRUE(q != nullptr && q->op_type() == "QuantizeLinear");
  return q;
}

float ScaleOf(const onnx::GraphProto& g, const onnx::NodeProto* q) {
  if (q == nullptr) return -1;
  return Values(*Initializer(g, q->input(1))).at(0);
}

const ExplainEntry* Find(const QdqResult& r, const std::string& node, int input) {
  for (const ExplainEntry& e : r.explain) {
    if (e.node == node && e.input == input) return &e;
  }
  ADD_FAILURE() << "no explain entry for " << node << " input " << input;
  return nullptr;
}

absl::StatusOr<QdqResult> Export(const onnx::ModelProto& model, const AmaxTable& table,
                                 QdqTarget target = QdqTarget::kTensorRT) {
  QdqOptions options;
  options.target = target;
  absl::StatusOr<QdqResult> r = ExportQdq(model, table, options);
  if (r.ok()) EXPECT_TRUE(CheckOnnxModel(r->model).ok()) << CheckOnnxModel(r->model);
  return r;
}

constexpr char kAdd[] = "/layer1/layer1.0/Add";

// `identity + out` and `out += identity`: the shortcut is found by structure, not by slot; it
// gets the block's residual quantizer, the conv side stays float.
TEST(Placement, ResidualShortcutFromResidualQuantizerInEitherOrder) {
  for (bool identity_first : {true, false}) {
    SCOPED_TRACE(identity_first);
    const onnx::ModelProto model = testing::ResidualBlock(false, identity_first);
    // conv1 not calibrated, so the shortcut x is no quantized conv's input.
    absl::StatusOr<QdqResult> r = Export(
        model, Table({{"layer1.0.conv2._input_quantizer", 2}, {"layer1.0.residual_quantizer", 3}}));
    ASSERT_TRUE(r.ok()) << r.status();
    const onnx::GraphProto& g = r->model.graph();
    const int shortcut = identity_first ? 0 : 1;
    EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, kAdd, shortcut)), 3.0f / 127);
    EXPECT_EQ(QFeeding(g, kAdd, 1 - shortcut), nullptr);
    EXPECT_EQ(CountOps(g, "QuantizeLinear"), 3);  // conv2 input and weight, shortcut
    const ExplainEntry* s = Find(*r, kAdd, shortcut);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->decision, ExplainDecision::kQuantized);
    EXPECT_EQ(s->quantizer, "layer1.0.residual_quantizer");
    EXPECT_EQ(s->rule, "residual add shortcut");
    EXPECT_EQ(s->tensor, "x");
    EXPECT_EQ(s->reason,
              absl::StrCat("per-tensor int8, amax 3, scale 0.023622; input ", 1 - shortcut,
                           " comes from Conv '/layer1/layer1.0/conv2/Conv', input ", shortcut,
                           " does not"));
    const ExplainEntry* c = Find(*r, kAdd, 1 - shortcut);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->decision, ExplainDecision::kSkipped);
    EXPECT_EQ(c->rule, "residual add conv side");
    EXPECT_THAT(c->reason, HasSubstr("conv-side input of a residual Add: it fuses into the "
                                     "epilogue of Conv '/layer1/layer1.0/conv2/Conv' (TensorRT)"));
  }
}

// BasicBlock without downsample: identity == x == conv1's input, one tensor: TensorRT gets one
// pair for the Conv and the Add (conv1's scale; the residual quantizer is not used), ONNX Runtime
// a dedicated pair per reader with that same scale.
TEST(Placement, ShortcutSharedWithConvInputOnePairForTensorRTDedicatedForOrt) {
  const onnx::ModelProto model = testing::ResidualBlock(false, false);
  const AmaxTable table = Table({{"layer1.0.conv1._input_quantizer", 2},
                                 {"layer1.0.conv2._input_quantizer", 1},
                                 {"layer1.0.residual_quantizer", 5}});
  absl::StatusOr<QdqResult> trt = Export(model, table);
  ASSERT_TRUE(trt.ok()) << trt.status();
  const onnx::GraphProto& g = trt->model.graph();
  const onnx::NodeProto* q = QFeeding(g, kAdd, 1);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q, QFeeding(g, "/layer1/layer1.0/conv1/Conv", 0));
  EXPECT_FLOAT_EQ(ScaleOf(g, q), 2.0f / 127);
  EXPECT_EQ(CountOps(g, "QuantizeLinear"), 4);  // x, conv2 input, two weights
  const ExplainEntry* e = Find(*trt, kAdd, 1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->decision, ExplainDecision::kQuantized);
  EXPECT_EQ(e->quantizer, "layer1.0.conv1._input_quantizer");
  EXPECT_EQ(e->reason,
            "per-tensor int8, amax 2, scale 0.015748, one pair shared by 2 readers; the shortcut "
            "is also input 0 of Conv '/layer1/layer1.0/conv1/Conv': same tensor, so it shares "
            "that Q/DQ pair and scale; 'layer1.0.residual_quantizer' is not used (one scale per "
            "tensor); input 0 comes from Conv '/layer1/layer1.0/conv2/Conv', input 1 does not");

  absl::StatusOr<QdqResult> ort = Export(model, table, QdqTarget::kOnnxRuntime);
  ASSERT_TRUE(ort.ok()) << ort.status();
  const onnx::GraphProto& o = ort->model.graph();
  const onnx::NodeProto* add_q = QFeeding(o, kAdd, 1);
  const onnx::NodeProto* conv_q = QFeeding(o, "/layer1/layer1.0/conv1/Conv", 0);
  ASSERT_NE(add_q, nullptr);
  ASSERT_NE(conv_q, nullptr);
  EXPECT_NE(add_q, conv_q);
  EXPECT_EQ(add_q->input(0), "x");
  EXPECT_EQ(conv_q->input(0), "x");
  EXPECT_FLOAT_EQ(ScaleOf(o, add_q), 2.0f / 127);
  EXPECT_EQ(CountOps(o, "QuantizeLinear"), 5);
}

// Downsample: both Add inputs are conv outputs; the shortcut is the one with the shorter path
// back to their common ancestor x (downsample: 1 node; main path: conv1, relu, conv2).
TEST(Placement, ResidualWithDownsampleQuantizesTheDownsampleSide) {
  for (bool identity_first : {true, false}) {
    SCOPED_TRACE(identity_first);
    const onnx::ModelProto model = testing::ResidualBlock(true, identity_first);
    absl::StatusOr<QdqResult> r =
        Export(model, Table({{"layer1.0.conv1._input_quantizer", 2},
                             {"layer1.0.conv2._input_quantizer", 1},
                             {"layer1.0.downsample.0._input_quantizer", 2},
                             {"layer1.0.residual_quantizer", 4}}));
    ASSERT_TRUE(r.ok()) << r.status();
    const onnx::GraphProto& g = r->model.graph();
    const int shortcut = identity_first ? 0 : 1;
    EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, kAdd, shortcut)), 4.0f / 127);
    EXPECT_EQ(QFeeding(g, kAdd, 1 - shortcut), nullptr);
    const ExplainEntry* e = Find(*r, kAdd, shortcut);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->tensor, "/layer1/layer1.0/downsample/downsample.0/Conv_output_0");
    EXPECT_THAT(e->reason, HasSubstr(absl::StrCat("both inputs come from convs; input ", shortcut,
                                                  " has the shorter path to their common "
                                                  "ancestor 'x' (1 vs 3 nodes)")));
  }
}

// A block with two residual adds: qcal.torch names their quantizers residual_quantizer and
// residual_quantizer_1, in graph order; torch.onnx names the adds Add and Add_1.
TEST(Placement, SecondResidualAddOfABlockTakesResidualQuantizer1) {
  testing::GraphBuilder b;
  b.Input("x", {1, 2, 4, 4});
  const std::string a = b.Conv("/blk/a", "blk.a", "x", 2, 2, 3);
  b.Node("Add", "/blk/Add", {a, "x"}, {"y"});
  const std::string c = b.Conv("/blk/c", "blk.c", "y", 2, 2, 3);
  b.Node("Add", "/blk/Add_1", {"y", c}, {"z"});
  b.Output("z");
  absl::StatusOr<QdqResult> r =
      Export(b.model, Table({{"blk.residual_quantizer", 3}, {"blk.residual_quantizer_1", 5}}));
  ASSERT_TRUE(r.ok()) << r.status();
  const onnx::GraphProto& g = r->model.graph();
  EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, "/blk/Add", 1)), 3.0f / 127);
  EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, "/blk/Add_1", 0)), 5.0f / 127);
  EXPECT_EQ(QFeeding(g, "/blk/Add_1", 1), nullptr);
  const ExplainEntry* e = Find(*r, "/blk/Add_1", 0);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->quantizer, "blk.residual_quantizer_1");
}

// Two convs of equal depth from one tensor: no shortcut to tell apart, nothing guessed.
TEST(Placement, SymmetricAddIsNotResidual) {
  testing::GraphBuilder b;
  b.Input("x", {1, 2, 4, 4});
  const std::string a = b.Conv("/blk/a", "blk.a", "x", 2, 2, 1);
  const std::string c = b.Conv("/blk/c", "blk.c", "x", 2, 2, 1);
  b.Node("Add", "/blk/Add", {a, c}, {"y"});
  b.Output("y");
  absl::StatusOr<QdqResult> r =
      Export(b.model, Table({{"blk.a._input_quantizer", 1}, {"blk.residual_quantizer", 1}}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(QFeeding(r->model.graph(), "/blk/Add", 0), nullptr);
  EXPECT_EQ(QFeeding(r->model.graph(), "/blk/Add", 1), nullptr);
  const ExplainEntry* e = Find(*r, "/blk/Add", 0);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->rule, "add (not residual)");
  EXPECT_EQ(e->reason,
            "not a residual add: both inputs come from convs 1 nodes after their common ancestor "
            "'x'; the shortcut is ambiguous");
  EXPECT_THAT(r->warnings,
              Contains("quantizer 'blk.residual_quantizer' matches no residual Add of the ONNX "
                       "model; nothing exported for it"));
}

// An Add without residual quantizer whose shortcut no quantized conv reads stays float.
TEST(Placement, ResidualAddWithoutQuantizerStaysFloatExplained) {
  const onnx::ModelProto model = testing::ResidualBlock(true, false);
  absl::StatusOr<QdqResult> r = Export(model, Table({{"layer1.0.conv1._input_quantizer", 2}}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(QFeeding(r->model.graph(), kAdd, 1), nullptr);
  const ExplainEntry* e = Find(*r, kAdd, 1);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->decision, ExplainDecision::kSkipped);
  EXPECT_EQ(e->quantizer, "layer1.0.residual_quantizer");
  EXPECT_THAT(e->reason, HasSubstr("no residual quantizer recorded (looked for "
                                   "'layer1.0.residual_quantizer'), and the shortcut is no "
                                   "quantized Conv's or pool's input"));
}

// MaxPool, AveragePool (behind torch's Pad) and GlobalAveragePool, 1d to 3d: input 0 quantized
// from the pool module's input quantizer. MaxPool and GlobalAveragePool read the same x:
// TensorRT gets one pair at the larger amax, ONNX Runtime one per pool.
TEST(Placement, PoolingInputs1d2d3d) {
  for (int rank : {1, 2, 3}) {
    SCOPED_TRACE(rank);
    const onnx::ModelProto model = testing::Pools(rank);
    const AmaxTable table = Table(
        {{"mp._input_quantizer", 1}, {"ap._input_quantizer", 2}, {"aap._input_quantizer", 3}});
    absl::StatusOr<QdqResult> r = Export(model, table);
    ASSERT_TRUE(r.ok()) << r.status();
    const onnx::GraphProto& g = r->model.graph();
    EXPECT_EQ(QFeeding(g, "/mp/MaxPool", 0), QFeeding(g, "/aap/GlobalAveragePool", 0));
    EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, "/mp/MaxPool", 0)), 3.0f / 127);
    EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, "/ap/AveragePool", 0)), 2.0f / 127);
    EXPECT_EQ(QFeeding(g, "/ap/AveragePool", 0)->input(0), "/ap/Pad_output_0");
    ASSERT_EQ(r->explain.size(), 3u);
    for (const ExplainEntry& e : r->explain) {
      EXPECT_EQ(e.rule, "pooling input");
      EXPECT_EQ(e.decision, ExplainDecision::kQuantized);
    }
    EXPECT_EQ(r->explain[0].quantizer, "aap._input_quantizer");
    EXPECT_EQ(r->explain[0].reason,
              "per-tensor int8, amax 3, scale 0.023622, one pair shared by 2 readers, from "
              "'aap._input_quantizer' (the largest amax on this tensor)");
    EXPECT_EQ(r->explain[1].quantizer, "ap._input_quantizer");

    absl::StatusOr<QdqResult> ort = Export(model, table, QdqTarget::kOnnxRuntime);
    ASSERT_TRUE(ort.ok()) << ort.status();
    const onnx::GraphProto& o = ort->model.graph();
    EXPECT_FLOAT_EQ(ScaleOf(o, QFeeding(o, "/mp/MaxPool", 0)), 1.0f / 127);
    EXPECT_FLOAT_EQ(ScaleOf(o, QFeeding(o, "/ap/AveragePool", 0)), 2.0f / 127);
    EXPECT_FLOAT_EQ(ScaleOf(o, QFeeding(o, "/aap/GlobalAveragePool", 0)), 3.0f / 127);
  }
}

// Concat of three branches: the quantized tensors around it (o1 read by a pool, o2 by a conv,
// the concat output by the head conv) share the largest amax, 4; o3 has no quantized reader.
TEST(Placement, ConcatOfThreeBranchesSharesOneScale) {
  const onnx::ModelProto model = testing::ConcatBranches();
  absl::StatusOr<QdqResult> r = Export(model, Table({{"b1._input_quantizer", 5},
                                                     {"b2._input_quantizer", 5},
                                                     {"b3._input_quantizer", 5},
                                                     {"p1._input_quantizer", 3},
                                                     {"c2._input_quantizer", 1},
                                                     {"head._input_quantizer", 4}}));
  ASSERT_TRUE(r.ok()) << r.status();
  const onnx::GraphProto& g = r->model.graph();
  const float shared = 4.0f / 127;
  EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, "/p1/MaxPool", 0)), shared);
  EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, "/c2/Conv", 0)), shared);
  EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, "/head/Conv", 0)), shared);
  EXPECT_EQ(QFeeding(g, "/cat/Concat", 0), QFeeding(g, "/p1/MaxPool", 0));
  EXPECT_EQ(QFeeding(g, "/cat/Concat", 1), QFeeding(g, "/c2/Conv", 0));
  EXPECT_EQ(QFeeding(g, "/cat/Concat", 2), nullptr);
  EXPECT_FLOAT_EQ(ScaleOf(g, QFeeding(g, "/b1/Conv", 0)), 5.0f / 127);  // x: not in the group
  EXPECT_THAT(r->warnings, Contains("quantizer 'p1._input_quantizer' tensor '/b1/Conv_output_0': "
                                    "amax raised from 3 to 4 to share one scale across Concat "
                                    "'/cat/Concat' (so TensorRT can drop the requantization)"));
  EXPECT_THAT(r->warnings, Contains(HasSubstr("'c2._input_quantizer' tensor '/b2/Conv_output_0': "
                                              "amax raised from 1 to 4")));
  const ExplainEntry* e = Find(*r, "/cat/Concat", 2);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->decision, ExplainDecision::kSkipped);
  EXPECT_EQ(e->rule, "concat shared scale");
  const ExplainEntry* c2 = Find(*r, "/c2/Conv", 0);
  ASSERT_NE(c2, nullptr);
  EXPECT_EQ(c2->reason,
            "per-tensor int8, amax 4, scale 0.0314961, one pair shared by 2 readers; amax raised "
            "from 1 to 4 to share one scale across Concat '/cat/Concat'");
}

// An input already produced by a DequantizeLinear of the input model gets nothing new.
TEST(Placement, InputFromDequantizeLinearIsAlreadyQuantized) {
  testing::GraphBuilder b;
  b.Input("x", {1, 2, 4, 4});
  onnx::TensorProto* scale = b.model.mutable_graph()->add_initializer();
  scale->set_name("s");
  scale->set_data_type(onnx::TensorProto::FLOAT);
  scale->add_float_data(0.1f);
  onnx::TensorProto* zp = b.model.mutable_graph()->add_initializer();
  zp->set_name("zp");
  zp->set_data_type(onnx::TensorProto::INT8);
  zp->set_raw_data(std::string(1, '\0'));
  b.Node("QuantizeLinear", "/a/_input_quantizer/QuantizeLinear", {"x", "s", "zp"}, {"xq"});
  b.Node("DequantizeLinear", "/a/_input_quantizer/DequantizeLinear", {"xq", "s", "zp"}, {"xd"});
  const std::string a = b.Conv("/a", "a", "xd", 2, 2, 1);
  b.Conv("/c", "c", a, 2, 2, 1);
  b.Output("/c/Conv_output_0");
  absl::StatusOr<QdqResult> r =
      Export(b.model, Table({{"a._input_quantizer", 9}, {"c._input_quantizer", 1}}));
  ASSERT_TRUE(r.ok()) << r.status();
  // The old one, a.weight (its input 0 is quantized, so TensorRT needs the weight quantized
  // too), c's input, c.weight.
  EXPECT_EQ(CountOps(r->model.graph(), "QuantizeLinear"), 4);
  const ExplainEntry* w = Find(*r, "/a/Conv", 1);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->decision, ExplainDecision::kQuantized);
  EXPECT_EQ(w->quantizer, "a._weight_quantizer");
  EXPECT_THAT(w->reason, HasSubstr("input 0 is quantized by the input model's pair"));
  const ExplainEntry* e = Find(*r, "/a/Conv", 0);
  ASSERT_NE(e, nullptr);
  // The table covers the pair's quantizer (its scope): its scale is rewritten (existing_qdq.h).
  EXPECT_EQ(e->decision, ExplainDecision::kRewritten);
  EXPECT_EQ(e->rule, "already quantized");
  EXPECT_EQ(e->quantizer, "a._input_quantizer");
  EXPECT_EQ(e->reason, "found by node scope; scale = amax 9 / bound from the table");
}

// The whole explain list of one small graph: every considered input, in graph order.
TEST(Placement, ExplainListsEveryConsideredInputInGraphOrder) {
  const onnx::ModelProto model = testing::ResidualBlock(false, true);
  AmaxTable table = Table({{"layer1.0.conv2._input_quantizer", 2}});
  table.quantizers["layer1.0.conv1._input_quantizer"].name = "layer1.0.conv1._input_quantizer";
  absl::StatusOr<QdqResult> r = Export(model, table);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> rows;
  for (const ExplainEntry& e : r->explain) {
    rows.push_back(absl::StrCat(e.node, "|", e.input, "|", e.tensor, "|",
                                ExplainDecisionName(e.decision), "|", e.quantizer, "|", e.rule, "|",
                                e.reason));
  }
  EXPECT_THAT(
      rows,
      ElementsAre(
          "/layer1/layer1.0/conv1/Conv|0|x|skipped|layer1.0.conv1._input_quantizer|weighted-op "
          "input|quantizer 'layer1.0.conv1._input_quantizer' has no amax (not calibrated)",
          "/layer1/layer1.0/conv1/Conv|1|layer1.0.conv1.weight|skipped|layer1.0.conv1._weight_"
          "quantizer|weighted-op weight|the data input (input 0) gets no new Q/DQ, so the weight "
          "stays float too",
          "/layer1/layer1.0/conv2/Conv|0|/layer1/layer1.0/relu/Relu_output_0|quantized|layer1.0."
          "conv2._input_quantizer|weighted-op input|per-tensor int8, amax 2, scale 0.015748",
          "/layer1/layer1.0/conv2/Conv|1|layer1.0.conv2.weight|quantized|layer1.0.conv2._weight_"
          "quantizer|weighted-op weight|per-channel, amax = max |w| per output channel of the "
          "initializer (as exported: an eval-mode export has folded BatchNorm into it)",
          "/layer1/layer1.0/Add|0|x|skipped|layer1.0.residual_quantizer|residual add "
          "shortcut|no residual quantizer recorded (looked for 'layer1.0.residual_quantizer'), "
          "and the shortcut is no quantized Conv's or pool's input; input 1 comes from Conv "
          "'/layer1/layer1.0/conv2/Conv', input 0 does not",
          "/layer1/layer1.0/Add|1|/layer1/layer1.0/conv2/Conv_output_0|skipped||residual add "
          "conv side|conv-side input of a residual Add: it fuses into the epilogue of Conv "
          "'/layer1/layer1.0/conv2/Conv' (TensorRT); input 1 comes from Conv "
          "'/layer1/layer1.0/conv2/Conv', input 0 does not"));
}

// A --map pair that puts a residual quantizer on the conv-side input is refused, naming the
// shortcut (it used to be dropped while the TensorRT cache still used it).
TEST(Placement, ResidualQuantizerMappedToTheConvSideIsRefused) {
  testing::GraphBuilder b;
  b.Input("x", {1, 2, 4, 4});
  const std::string a = b.Conv("/blk/a", "blk.a", "x", 2, 2, 3);
  b.Node("Add", "/blk/Add", {a, "x"}, {"y"});
  b.Output("y");
  QdqOptions options;
  options.explicit_pairs = {{"blk.residual_quantizer", a}};
  absl::StatusOr<QdqResult> r = ExportQdq(
      b.model, Table({{"blk.residual_quantizer", 3}, {"blk.a._input_quantizer", 2}}), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr(absl::StrCat("explicit pair 'blk.residual_quantizer' -> '", a, "'")));
  EXPECT_THAT(r.status().message(), HasSubstr("its shortcut is 'x'"));
}

// Concat scales are shared within one format: an FP8 reader keeps its own amax.
TEST(Placement, ConcatSharesScalesWithinOneFormatOnly) {
  testing::GraphBuilder b;
  b.Input("x", {1, 2, 4, 4});
  const std::string c1 = b.Conv("/c1", "c1", "x", 2, 2, 1);
  const std::string c2 = b.Conv("/c2", "c2", "x", 2, 2, 1);
  b.Node("Concat", "/cat/Concat", {c1, c2}, {"cat"}, {{"axis", 1}});
  const std::string h1 = b.Conv("/h1", "h1", c1, 2, 2, 1);
  const std::string h2 = b.Conv("/h2", "h2", c2, 2, 2, 1);
  const std::string head = b.Conv("/head", "head", "cat", 4, 2, 1);
  b.Output(h1);
  b.Output(h2);
  b.Output(head);
  AmaxTable table =
      Table({{"h1._input_quantizer", 1}, {"h2._input_quantizer", 4}, {"head._input_quantizer", 2}});
  table.quantizers["h1._input_quantizer"].format = kernels::QuantFormat::kFp8E4M3;
  // ExportQdq itself: ONNX 1.12's checker cannot read the opset-19 result (fp8_qdq.h).
  absl::StatusOr<QdqResult> r = ExportQdq(b.model, table, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->warnings, Not(Contains(HasSubstr("'h1._input_quantizer' tensor"))));
  const ExplainEntry* e = Find(*r, "/h1/Conv", 0);
  ASSERT_NE(e, nullptr);
  EXPECT_THAT(e->reason, Not(HasSubstr("amax raised")));
  EXPECT_THAT(e->reason, HasSubstr("amax 1,"));
}

}  // namespace
}  // namespace qcal::server
