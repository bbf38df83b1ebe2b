#include "server/onnx/quantizer_binding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/onnx/testing.h"

namespace qcal::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::LoadModel;
using testing::NodeIndex;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// Every module's input and weight quantizer, as pytorch-quantization names them.
std::vector<std::string> QuantizersOf(const std::vector<std::string>& modules) {
  std::vector<std::string> names;
  for (const std::string& m : modules) {
    names.push_back(m + "._input_quantizer");
    names.push_back(m + "._weight_quantizer");
  }
  return names;
}

struct Expected {
  std::string quantizer;
  std::vector<std::string> nodes;
  std::string tensor;
};

void ExpectBindings(const onnx::ModelProto& model,
                    const std::map<std::string, QuantizerBinding>& bindings,
                    const std::vector<Expected>& expected) {
  ASSERT_EQ(bindings.size(), expected.size());
  for (const Expected& e : expected) {
    auto it = bindings.find(e.quantizer);
    ASSERT_NE(it, bindings.end()) << e.quantizer << " is not bound";
    EXPECT_EQ(it->second.quantizer, e.quantizer);
    std::vector<int> nodes;
    for (const std::string& n : e.nodes) nodes.push_back(NodeIndex(model.graph(), n));
    EXPECT_EQ(it->second.nodes, nodes) << e.quantizer;
    EXPECT_EQ(it->second.tensor, e.tensor) << e.quantizer;
    EXPECT_EQ(it->second.tensors, std::vector<std::string>{e.tensor}) << e.quantizer;
  }
}

TEST(BindQuantizers, CnnWithFoldedBatchNorm) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  std::vector<std::string> quantizers = QuantizersOf({"conv1", "conv2", "conv3", "fc1", "fc2"});
  // Neither BatchNorm (folded away) nor an unknown module binds; nor an output quantizer.
  quantizers.push_back("bn1._input_quantizer");
  quantizers.push_back("nosuch._input_quantizer");
  quantizers.push_back("conv1._output_quantizer");
  absl::StatusOr<std::map<std::string, QuantizerBinding>> b = BindQuantizers(model, quantizers, {});
  ASSERT_TRUE(b.ok()) << b.status();
  ExpectBindings(model, *b,
                 {
                     {"conv1._input_quantizer", {"/conv1/Conv"}, "input"},
                     {"conv1._weight_quantizer", {"/conv1/Conv"}, "onnx::Conv_35"},
                     {"conv2._input_quantizer", {"/conv2/Conv"}, "/pool/MaxPool_output_0"},
                     {"conv2._weight_quantizer", {"/conv2/Conv"}, "onnx::Conv_38"},
                     {"conv3._input_quantizer", {"/conv3/Conv"}, "/pool_1/MaxPool_output_0"},
                     {"conv3._weight_quantizer", {"/conv3/Conv"}, "conv3.weight"},
                     {"fc1._input_quantizer", {"/fc1/Gemm"}, "/Flatten_output_0"},
                     {"fc1._weight_quantizer", {"/fc1/Gemm"}, "fc1.weight"},
                     {"fc2._input_quantizer", {"/fc2/Gemm"}, "/Relu_3_output_0"},
                     {"fc2._weight_quantizer", {"/fc2/Gemm"}, "fc2.weight"},
                 });
}

TEST(BindQuantizers, ResNetBlocksAndNestedSequential) {
  const onnx::ModelProto model = LoadModel("resnet_block.onnx");
  std::vector<std::string> quantizers =
      QuantizersOf({"conv1", "layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2",
                    "layer1.1.downsample.0", "classifier.1"});
  // Parents own no quantizable node themselves.
  quantizers.push_back("layer1.0._input_quantizer");
  quantizers.push_back("layer1._input_quantizer");
  absl::StatusOr<std::map<std::string, QuantizerBinding>> b = BindQuantizers(model, quantizers, {});
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string block0_out = "/layer1/layer1.0/Relu_1_output_0";
  ExpectBindings(
      model, *b,
      {
          {"conv1._input_quantizer", {"/conv1/Conv"}, "input"},
          {"conv1._weight_quantizer", {"/conv1/Conv"}, "onnx::Conv_62"},
          {"layer1.0.conv1._input_quantizer", {"/layer1/layer1.0/conv1/Conv"}, "/Relu_output_0"},
          {"layer1.0.conv1._weight_quantizer", {"/layer1/layer1.0/conv1/Conv"}, "onnx::Conv_65"},
          {"layer1.0.conv2._input_quantizer",
           {"/layer1/layer1.0/conv2/Conv"},
           "/layer1/layer1.0/Relu_output_0"},
          {"layer1.0.conv2._weight_quantizer", {"/layer1/layer1.0/conv2/Conv"}, "onnx::Conv_68"},
          {"layer1.1.conv1._input_quantizer", {"/layer1/layer1.1/conv1/Conv"}, block0_out},
          {"layer1.1.conv1._weight_quantizer", {"/layer1/layer1.1/conv1/Conv"}, "onnx::Conv_71"},
          {"layer1.1.conv2._input_quantizer",
           {"/layer1/layer1.1/conv2/Conv"},
           "/layer1/layer1.1/Relu_output_0"},
          {"layer1.1.conv2._weight_quantizer", {"/layer1/layer1.1/conv2/Conv"}, "onnx::Conv_74"},
          {"layer1.1.downsample.0._input_quantizer",
           {"/layer1/layer1.1/downsample/downsample.0/Conv"},
           block0_out},
          {"layer1.1.downsample.0._weight_quantizer",
           {"/layer1/layer1.1/downsample/downsample.0/Conv"},
           "onnx::Conv_77"},
          {"classifier.1._input_quantizer", {"/classifier/classifier.1/Gemm"}, "/Flatten_output_0"},
          {"classifier.1._weight_quantizer",
           {"/classifier/classifier.1/Gemm"},
           "classifier.1.weight"},
      });

  // For the TensorRT cache: the block output feeds two modules, so two input quantizers.
  std::map<std::string, std::vector<std::string>> by_tensor = ActivationTensorQuantizers(*b);
  EXPECT_EQ(by_tensor.size(), 6u);
  EXPECT_THAT(by_tensor[block0_out], ElementsAre("layer1.1.conv1._input_quantizer",
                                                 "layer1.1.downsample.0._input_quantizer"));
  EXPECT_THAT(by_tensor["input"], ElementsAre("conv1._input_quantizer"));
  EXPECT_THAT(by_tensor["/Flatten_output_0"], ElementsAre("classifier.1._input_quantizer"));
}

TEST(BindQuantizers, LinearOn3dInputIsMatMul) {
  const onnx::ModelProto model = LoadModel("linear3d.onnx");
  absl::StatusOr<std::map<std::string, QuantizerBinding>> b =
      BindQuantizers(model, QuantizersOf({"fc", "proj"}), {});
  ASSERT_TRUE(b.ok()) << b.status();
  ExpectBindings(model, *b,
                 {
                     {"fc._input_quantizer", {"/fc/MatMul"}, "input"},
                     {"fc._weight_quantizer", {"/fc/MatMul"}, "onnx::MatMul_10"},
                     {"proj._input_quantizer", {"/proj/MatMul"}, "/Relu_output_0"},
                     {"proj._weight_quantizer", {"/proj/MatMul"}, "onnx::MatMul_11"},
                 });
}

TEST(BindQuantizers, ConvTranspose) {
  const onnx::ModelProto model = LoadModel("deconv.onnx");
  absl::StatusOr<std::map<std::string, QuantizerBinding>> b =
      BindQuantizers(model, QuantizersOf({"conv1", "up"}), {});
  ASSERT_TRUE(b.ok()) << b.status();
  ExpectBindings(model, *b,
                 {
                     {"conv1._input_quantizer", {"/conv1/Conv"}, "input"},
                     {"conv1._weight_quantizer", {"/conv1/Conv"}, "conv1.weight"},
                     {"up._input_quantizer", {"/up/ConvTranspose"}, "/Relu_output_0"},
                     {"up._weight_quantizer", {"/up/ConvTranspose"}, "up.weight"},
                 });
}

TEST(BindQuantizers, RepeatedCallBindsBothNodes) {
  // fc runs twice: "/fc/Gemm" and "/fc_1/Gemm", both reading fc.weight.
  const onnx::ModelProto model = LoadModel("reuse.onnx");
  absl::StatusOr<std::map<std::string, QuantizerBinding>> b =
      BindQuantizers(model, QuantizersOf({"fc", "head"}), {});
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(b->size(), 4u);
  const int first = NodeIndex(model.graph(), "/fc/Gemm");
  const int second = NodeIndex(model.graph(), "/fc_1/Gemm");
  const QuantizerBinding& input = b->at("fc._input_quantizer");
  EXPECT_THAT(input.nodes, ElementsAre(first, second));
  EXPECT_EQ(input.tensor, "input");
  EXPECT_THAT(input.tensors, ElementsAre("input", "/Relu_output_0"));
  const QuantizerBinding& weight = b->at("fc._weight_quantizer");
  EXPECT_THAT(weight.nodes, ElementsAre(first, second));
  EXPECT_THAT(weight.tensors, ElementsAre("fc.weight"));
  EXPECT_EQ(b->at("head._input_quantizer").tensor, "/Relu_1_output_0");

  // The TensorRT cache sees fc's quantizer on both tensors.
  std::map<std::string, std::vector<std::string>> by_tensor = ActivationTensorQuantizers(*b);
  EXPECT_THAT(by_tensor,
              UnorderedElementsAre(Pair("input", ElementsAre("fc._input_quantizer")),
                                   Pair("/Relu_output_0", ElementsAre("fc._input_quantizer")),
                                   Pair("/Relu_1_output_0", ElementsAre("head._input_quantizer"))));
}

TEST(BindQuantizers, ModuleReallyNamedLikeARepeatedCallWinsItsScope) {
  // With quantizers for a module "fc_1", the node "/fc_1/Gemm" is that module's.
  const onnx::ModelProto model = LoadModel("reuse.onnx");
  absl::StatusOr<std::map<std::string, QuantizerBinding>> b =
      BindQuantizers(model, {"fc._input_quantizer", "fc_1._input_quantizer"}, {});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(b->at("fc._input_quantizer").nodes,
              ElementsAre(NodeIndex(model.graph(), "/fc/Gemm")));
  EXPECT_THAT(b->at("fc_1._input_quantizer").nodes,
              ElementsAre(NodeIndex(model.graph(), "/fc_1/Gemm")));
}

TEST(BindQuantizers, NodesWithoutScopeBindByWeightName) {
  onnx::ModelProto model = LoadModel("dead_channel.onnx");
  model.mutable_graph()->mutable_node(0)->set_name("Conv_0");
  absl::StatusOr<std::map<std::string, QuantizerBinding>> b =
      BindQuantizers(model, QuantizersOf({"conv"}), {});
  ASSERT_TRUE(b.ok()) << b.status();
  ExpectBindings(model, *b,
                 {
                     {"conv._input_quantizer", {"Conv_0"}, "input"},
                     {"conv._weight_quantizer", {"Conv_0"}, "conv.weight"},
                 });
}

TEST(BindQuantizers, ExplicitPairsOverride) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  // conv3's input quantizer is pointed at conv2's data input, so conv2's own input quantizer
  // loses that node and is left out; an unscoped name binds too.
  absl::StatusOr<std::map<std::string, QuantizerBinding>> b =
      BindQuantizers(model,
                     {"conv2._input_quantizer", "conv3._input_quantizer", "stem._input_quantizer",
                      "stem._weight_quantizer", "conv1._weight_quantizer"},
                     {{"conv3._input_quantizer", "/pool/MaxPool_output_0"},
                      {"stem._input_quantizer", "input"},
                      {"stem._weight_quantizer", "onnx::Conv_35"}});
  ASSERT_TRUE(b.ok()) << b.status();
  ExpectBindings(model, *b,
                 {
                     {"conv3._input_quantizer", {"/conv2/Conv"}, "/pool/MaxPool_output_0"},
                     {"stem._input_quantizer", {"/conv1/Conv"}, "input"},
                     {"stem._weight_quantizer", {"/conv1/Conv"}, "onnx::Conv_35"},
                 });
}

TEST(BindQuantizers, ExplicitPairErrorsNameThePair) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  const std::vector<std::string> quantizers = QuantizersOf({"conv1", "conv2"});
  struct Case {
    std::map<std::string, std::string> pairs;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"convX._input_quantizer", "input"}},
       "the model has no quantizer 'convX._input_quantizer'"},
      {{{"conv1._input_quantizer", "nosuch"}}, "the ONNX graph has no tensor 'nosuch'"},
      {{{"conv1._input_quantizer", "/conv1/Conv_output_0"}},
       "'/conv1/Conv_output_0' is not the data input (input 0) of any Conv"},
      {{{"conv1._weight_quantizer", "input"}}, "'input' is not the weight (input 1) of any Conv"},
      {{{"conv1._input_quantizer", "input"}, {"conv2._input_quantizer", "input"}},
       "is already bound to 'conv1._input_quantizer' by another explicit pair"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::map<std::string, QuantizerBinding>> b =
        BindQuantizers(model, quantizers, c.pairs);
    ASSERT_FALSE(b.ok()) << c.message;
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(b.status().ToString(), HasSubstr(c.message));
    EXPECT_THAT(b.status().ToString(), HasSubstr("explicit pair"));
  }
  absl::StatusOr<std::map<std::string, QuantizerBinding>> odd =
      BindQuantizers(model, {"conv1._output_quantizer"}, {{"conv1._output_quantizer", "input"}});
  ASSERT_FALSE(odd.ok());
  EXPECT_THAT(odd.status().ToString(),
              HasSubstr("is none of _input_quantizer, _weight_quantizer, residual_quantizer"));
}

// Pools bind by scope to input 0; a block's residual quantizer to its Add's shortcut input, and
// both are activation tensors of the TensorRT cache.
TEST(BindQuantizers, PoolsAndResidualQuantizers) {
  const onnx::ModelProto model = LoadModel("resnet_block.onnx");
  absl::StatusOr<std::map<std::string, QuantizerBinding>> b =
      BindQuantizers(model,
                     {"avgpool._input_quantizer", "layer1.0.residual_quantizer",
                      "layer1.1.residual_quantizer", "avgpool._weight_quantizer"},
                     {});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(b->contains("avgpool._weight_quantizer"));
  const QuantizerBinding& pool = b->at("avgpool._input_quantizer");
  EXPECT_EQ(pool.tensor, "/layer1/layer1.1/Relu_1_output_0");
  EXPECT_THAT(pool.slots, ElementsAre(0));
  const QuantizerBinding& r0 = b->at("layer1.0.residual_quantizer");
  EXPECT_THAT(r0.nodes, ElementsAre(NodeIndex(model.graph(), "/layer1/layer1.0/Add")));
  EXPECT_THAT(r0.slots, ElementsAre(1));
  EXPECT_EQ(r0.tensor, "/Relu_output_0");
  const QuantizerBinding& r1 = b->at("layer1.1.residual_quantizer");
  EXPECT_EQ(r1.tensor, "/layer1/layer1.1/downsample/downsample.0/Conv_output_0");
  const auto cache = ActivationTensorQuantizers(*b);
  EXPECT_THAT(cache.at("/Relu_output_0"), ElementsAre("layer1.0.residual_quantizer"));
  // An explicit pair of a residual quantizer binds the Adds reading that tensor in any slot.
  b = BindQuantizers(model, {"blk.residual_quantizer"},
                     {{"blk.residual_quantizer", "/Relu_output_0"}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT(b->at("blk.residual_quantizer").slots, ElementsAre(1));
}

}  // namespace
}  // namespace qcal::server
