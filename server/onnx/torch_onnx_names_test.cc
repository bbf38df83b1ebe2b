#include "server/onnx/torch_onnx_names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qcal::server {
namespace {

using ::testing::ElementsAre;
using ::testing::Optional;

// Scopes below are what torch 1.13's torch.onnx.export wrote for these module trees.
TEST(ModuleOfScope, NestedSequentialAndResNetBlocks) {
  EXPECT_THAT(ModuleOfScope("/conv1/Conv", false), Optional(std::string("conv1")));
  EXPECT_THAT(ModuleOfScope("/layer1/layer1.0/conv1/Conv", false),
              Optional(std::string("layer1.0.conv1")));
  EXPECT_THAT(ModuleOfScope("/layer1/layer1.1/downsample/downsample.0/Conv", false),
              Optional(std::string("layer1.1.downsample.0")));
  EXPECT_THAT(ModuleOfScope("/classifier/classifier.1/Gemm", false),
              Optional(std::string("classifier.1")));
  EXPECT_THAT(ModuleOfScope("/seq/seq.0/seq.0.0/Gemm", false), Optional(std::string("seq.0.0")));
}

TEST(ModuleOfScope, ModuleListChildHasNoParentComponent) {
  // model.blocks is a ModuleList (never called): its children appear as "blocks.0".
  EXPECT_THAT(ModuleOfScope("/blocks.0/Gemm", false), Optional(std::string("blocks.0")));
  EXPECT_THAT(ModuleOfScope("/blocks.0/blocks.0.0/Gemm", false),
              Optional(std::string("blocks.0.0")));
  EXPECT_THAT(ModuleOfScope("/net/blocks.0/fc/Gemm", false),
              Optional(std::string("net.blocks.0.fc")));
}

TEST(ModuleOfScope, TopLevelSequentialHasNumericNames) {
  EXPECT_THAT(ModuleOfScope("/0/Conv", false), Optional(std::string("0")));
  EXPECT_THAT(ModuleOfScope("/0/0.1/Conv", false), Optional(std::string("0.1")));
}

TEST(ModuleOfScope, RepeatedCallSuffix) {
  EXPECT_THAT(ModuleOfScope("/fc_1/Gemm", false), Optional(std::string("fc_1")));
  EXPECT_THAT(ModuleOfScope("/fc_1/Gemm", true), Optional(std::string("fc")));
  EXPECT_THAT(ModuleOfScope("/seq/seq.1_1/Gemm", true), Optional(std::string("seq.1")));
  EXPECT_THAT(ModuleOfScope("/seq/seq.0/lin_1/Gemm", true), Optional(std::string("seq.0.lin")));
  // Only "_<digits>" is a call suffix.
  EXPECT_THAT(ModuleOfScope("/conv_a/Conv", true), Optional(std::string("conv_a")));
}

TEST(ModuleOfScope, RootAndUnscopedNames) {
  EXPECT_THAT(ModuleOfScope("/Relu", false), Optional(std::string("")));
  EXPECT_THAT(ModuleOfScope("/Gemm_1", false), Optional(std::string("")));
  EXPECT_EQ(ModuleOfScope("Conv_3", false), std::nullopt);
  EXPECT_EQ(ModuleOfScope("", false), std::nullopt);
  EXPECT_EQ(ModuleOfScope("//Conv", false), std::nullopt);
}

TEST(ModuleOfWeight, StripsDotWeight) {
  EXPECT_THAT(ModuleOfWeight("conv1.weight"), Optional(std::string("conv1")));
  EXPECT_THAT(ModuleOfWeight("layer1.0.conv1.weight"), Optional(std::string("layer1.0.conv1")));
  EXPECT_EQ(ModuleOfWeight("onnx::Conv_35"), std::nullopt);
  EXPECT_EQ(ModuleOfWeight("conv1.bias"), std::nullopt);
  EXPECT_EQ(ModuleOfWeight(".weight"), std::nullopt);
}

TEST(ParseQuantizerName, InputAndWeightQuantizers) {
  std::optional<QuantizerName> q = ParseQuantizerName("layer1.0.conv1._input_quantizer");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->module, "layer1.0.conv1");
  EXPECT_EQ(q->kind, QuantizerKind::kInput);
  q = ParseQuantizerName("fc._weight_quantizer");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->module, "fc");
  EXPECT_EQ(q->kind, QuantizerKind::kWeight);
  q = ParseQuantizerName("_input_quantizer");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->module, "");
  EXPECT_EQ(ParseQuantizerName("fc._output_quantizer"), std::nullopt);
  EXPECT_EQ(ParseQuantizerName("fc_input_quantizer"), std::nullopt);
  EXPECT_EQ(ParseQuantizerName("._input_quantizer"), std::nullopt);
  EXPECT_EQ(QuantizerNameOf("fc", QuantizerKind::kWeight), "fc._weight_quantizer");
  EXPECT_EQ(QuantizerNameOf("", QuantizerKind::kInput), "_input_quantizer");
}

onnx::NodeProto Node(const std::string& op, const std::string& name,
                     std::vector<std::string> inputs, const std::string& domain = "") {
  onnx::NodeProto node;
  node.set_op_type(op);
  node.set_name(name);
  node.set_domain(domain);
  for (const std::string& input : inputs) node.add_input(input);
  return node;
}

TEST(CandidateModules, ScopeFirstThenStrippedElseWeightName) {
  EXPECT_THAT(CandidateModules(Node("Gemm", "/fc_1/Gemm", {"x", "fc.weight"})),
              ElementsAre("fc_1", "fc"));
  EXPECT_THAT(CandidateModules(Node("Conv", "/conv1/Conv", {"x", "onnx::Conv_35"})),
              ElementsAre("conv1"));
  // A tied weight under a scope does not make the node its owner's.
  EXPECT_THAT(CandidateModules(Node("Gemm", "/lm_head/Gemm", {"x", "embed.weight"})),
              ElementsAre("lm_head"));
  EXPECT_THAT(CandidateModules(Node("Conv", "Conv_0", {"x", "conv1.weight"})),
              ElementsAre("conv1"));
  EXPECT_THAT(CandidateModules(Node("Conv", "Conv_0", {"x", "onnx::Conv_35"})), ElementsAre());
}

TEST(IsQuantizableNode, OpsAndDomain) {
  EXPECT_TRUE(IsQuantizableNode(Node("Conv", "a", {"x", "w"})));
  EXPECT_TRUE(IsQuantizableNode(Node("ConvTranspose", "a", {"x", "w"})));
  EXPECT_TRUE(IsQuantizableNode(Node("Gemm", "a", {"x", "w"}, "ai.onnx")));
  EXPECT_TRUE(IsQuantizableNode(Node("MatMul", "a", {"x", "w"})));
  EXPECT_FALSE(IsQuantizableNode(Node("Add", "a", {"x", "w"})));
  EXPECT_FALSE(IsQuantizableNode(Node("Conv", "a", {"x", "w"}, "com.microsoft")));
  EXPECT_FALSE(IsQuantizableNode(Node("Conv", "a", {"x"})));
}

TEST(ParseQuantizerName, ResidualQuantizerOfABlock) {
  // pytorch-quantization's resnet.py: BasicBlock.residual_quantizer, no leading underscore.
  std::optional<QuantizerName> q = ParseQuantizerName("layer1.0.residual_quantizer");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->module, "layer1.0");
  EXPECT_EQ(q->kind, QuantizerKind::kResidual);
  q = ParseQuantizerName("residual_quantizer");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->module, "");
  EXPECT_EQ(ParseQuantizerName("layer1.0._residual_quantizer"), std::nullopt);
  EXPECT_EQ(ParseQuantizerName("layer1.0.my_residual_quantizer"), std::nullopt);
  EXPECT_EQ(QuantizerNameOf("layer1.0", QuantizerKind::kResidual), "layer1.0.residual_quantizer");
  // qcal.torch's numbering of a block's further residual adds.
  q = ParseQuantizerName("layer1.0.residual_quantizer_2");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->module, "layer1.0");
  EXPECT_EQ(q->kind, QuantizerKind::kResidual);
  EXPECT_EQ(q->index, 2);
  EXPECT_EQ(ParseQuantizerName("residual_quantizer_1")->index, 1);
  EXPECT_EQ(ParseQuantizerName("layer1.0.residual_quantizer_0"), std::nullopt);
  EXPECT_EQ(ParseQuantizerName("fc._input_quantizer_1"), std::nullopt);
  EXPECT_EQ(QuantizerNameOf("b", QuantizerKind::kResidual, 2), "b.residual_quantizer_2");
}

TEST(IsPoolingNode, WhatTorchOnnxEmitsForPools) {
  EXPECT_TRUE(IsPoolingNode(Node("MaxPool", "/mp/MaxPool", {"x"})));
  EXPECT_TRUE(IsPoolingNode(Node("AveragePool", "/ap/AveragePool", {"x"})));
  EXPECT_TRUE(IsPoolingNode(Node("GlobalAveragePool", "/aap/GlobalAveragePool", {"x"})));
  EXPECT_FALSE(IsPoolingNode(Node("GlobalMaxPool", "/g/GlobalMaxPool", {"x"})));
  EXPECT_FALSE(IsPoolingNode(Node("MaxPool", "a", {"x"}, "com.microsoft")));
  EXPECT_TRUE(KindBindsTo(QuantizerKind::kInput, Node("MaxPool", "a", {"x"})));
  EXPECT_FALSE(KindBindsTo(QuantizerKind::kWeight, Node("MaxPool", "a", {"x"})));
  EXPECT_TRUE(KindBindsTo(QuantizerKind::kResidual, Node("Add", "a", {"x", "y"})));
  EXPECT_FALSE(KindBindsTo(QuantizerKind::kResidual, Node("Add", "a", {"x"})));
  // Pools and Adds without scope bind nothing (no weight to name a module by).
  EXPECT_THAT(CandidateModules(Node("Add", "Add_3", {"x", "conv.weight"})), ElementsAre());
}

}  // namespace
}  // namespace qcal::server
