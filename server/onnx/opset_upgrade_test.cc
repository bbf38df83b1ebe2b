#include "server/onnx/opset_upgrade.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/onnx/onnx_model.h"
#include "server/onnx/testing.h"

namespace qcal::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

onnx::NodeProto* AddNode(onnx::GraphProto* graph, const std::string& op,
                         const std::vector<std::string>& inputs,
                         const std::vector<std::string>& outputs) {
  onnx::NodeProto* node = graph->add_node();
  node->set_op_type(op);
  node->set_name("/" + op + "_" + std::to_string(graph->node_size()));
  for (const std::string& in : inputs) node->add_input(in);
  for (const std::string& out : outputs) node->add_output(out);
  return node;
}

// x -> Conv(w) -> Relu -> MaxPool -> Reshape(shape) -> Gemm(fc) -> Add(b) -> y at `opset`; only
// the ops matter here (no types or shapes).
onnx::ModelProto Model(int64_t opset) {
  onnx::ModelProto model;
  model.set_ir_version(7);
  model.add_opset_import()->set_version(opset);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("g");
  g->add_input()->set_name("x");
  for (const char* name : {"w", "shape", "fc", "b"}) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
  }
  AddNode(g, "Conv", {"x", "w"}, {"c"});
  AddNode(g, "Relu", {"c"}, {"r"});
  onnx::NodeProto* pool = AddNode(g, "MaxPool", {"r"}, {"p"});
  onnx::AttributeProto* k = pool->add_attribute();
  k->set_name("kernel_shape");
  k->set_type(onnx::AttributeProto::INTS);
  k->add_ints(2);
  k->add_ints(2);
  AddNode(g, "Reshape", {"p", "shape"}, {"f"});
  AddNode(g, "Gemm", {"f", "fc"}, {"m"});
  AddNode(g, "Add", {"m", "b"}, {"y"});
  g->add_output()->set_name("y");
  return model;
}

TEST(OpsetUpgradeTest, RaisesListedOpsTo19AndIr9) {
  for (int64_t opset : {13, 15, 17}) {
    onnx::ModelProto model = Model(opset);
    ASSERT_TRUE(RaiseOpset(&model, kFp8Opset).ok()) << opset;
    EXPECT_EQ(DefaultOpset(model), 19);
    EXPECT_EQ(model.ir_version(), 9);
    EXPECT_EQ(model.graph().node_size(), 6);
  }
}

TEST(OpsetUpgradeTest, OtherDomainsKeepTheirOpset) {
  onnx::ModelProto model = Model(13);
  onnx::OperatorSetIdProto* ms = model.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  onnx::NodeProto* custom = AddNode(model.mutable_graph(), "Gelu", {"y"}, {"z"});
  custom->set_domain("com.microsoft");
  ASSERT_TRUE(RaiseOpset(&model, kFp8Opset).ok());
  EXPECT_EQ(model.opset_import(0).version(), 19);
  EXPECT_EQ(model.opset_import(1).domain(), "com.microsoft");
  EXPECT_EQ(model.opset_import(1).version(), 1);
}

TEST(OpsetUpgradeTest, RefusesReduceMeanNamingItAndOpset18) {
  onnx::ModelProto model = Model(13);
  onnx::NodeProto* mean = AddNode(model.mutable_graph(), "ReduceMean", {"y"}, {"z"});
  mean->set_name("/head/ReduceMean");
  const onnx::ModelProto before = model;
  const absl::Status s = RaiseOpset(&model, kFp8Opset);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'/head/ReduceMean' (ReduceMean"),
                                 HasSubstr("changed at opset 18"), HasSubstr("axes moved")));
  EXPECT_EQ(model.SerializeAsString(), before.SerializeAsString());  // unchanged on error
}

TEST(OpsetUpgradeTest, RefusesSplitAndResizeAt18) {
  for (const char* op : {"Split", "Resize", "ReduceMax", "OptionalHasElement"}) {
    onnx::ModelProto model = Model(17);
    AddNode(model.mutable_graph(), op, {"y"}, {"z"});
    const absl::Status s = CheckOpsetUpgrade(model, kFp8Opset);
    EXPECT_THAT(s.message(), AllOf(HasSubstr(std::string("(") + op), HasSubstr("opset 18"))) << op;
  }
}

// RoiAlign-16 changed its default coordinate mode: found through ONNX's own schema registry,
// not the hard-coded 18/19 lists.
TEST(OpsetUpgradeTest, RegistryFindsChangesUpTo17) {
  onnx::ModelProto model = Model(13);
  AddNode(model.mutable_graph(), "RoiAlign", {"y", "rois", "idx"}, {"z"});
  EXPECT_THAT(CheckOpsetUpgrade(model, kFp8Opset).message(),
              AllOf(HasSubstr("(RoiAlign"), HasSubstr("changed at opset 16"),
                    HasSubstr("coordinate_transformation_mode")));
  // Opset 16 models already have RoiAlign-16: nothing changes for them.
  onnx::ModelProto at16 = Model(16);
  AddNode(at16.mutable_graph(), "RoiAlign", {"y", "rois", "idx"}, {"z"});
  EXPECT_TRUE(CheckOpsetUpgrade(at16, kFp8Opset).ok());
}

TEST(OpsetUpgradeTest, BatchNormalizationOnlyInInferenceForm) {
  onnx::ModelProto model = Model(13);
  AddNode(model.mutable_graph(), "BatchNormalization", {"y", "s", "b", "m", "v"}, {"z"});
  EXPECT_TRUE(CheckOpsetUpgrade(model, kFp8Opset).ok());
  AddNode(model.mutable_graph(), "BatchNormalization", {"z", "s", "b", "m", "v"},
          {"z2", "mean", "var"});
  EXPECT_THAT(CheckOpsetUpgrade(model, kFp8Opset).message(),
              AllOf(HasSubstr("(BatchNormalization"), HasSubstr("opset 14")));
}

TEST(OpsetUpgradeTest, RefusesAnOpUnknownAtTheModelsOpset) {
  onnx::ModelProto model = Model(13);
  AddNode(model.mutable_graph(), "HardSwish", {"y"}, {"z"});  // new at 14
  EXPECT_THAT(CheckOpsetUpgrade(model, kFp8Opset).message(),
              AllOf(HasSubstr("(HardSwish"), HasSubstr("no such op at opset 13")));
}

TEST(OpsetUpgradeTest, ChecksSubgraphs) {
  onnx::ModelProto model = Model(13);
  onnx::NodeProto* branch = AddNode(model.mutable_graph(), "If", {"cond"}, {"z"});
  for (const char* name : {"then_branch", "else_branch"}) {
    onnx::AttributeProto* a = branch->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::GRAPH);
    a->mutable_g()->set_name(name);
    AddNode(a->mutable_g(), "ReduceMean", {"y"}, {"o"})->set_name(std::string("/") + name);
  }
  EXPECT_THAT(CheckOpsetUpgrade(model, kFp8Opset).message(),
              AllOf(HasSubstr("then_branch"), HasSubstr("(ReduceMean")));
}

TEST(OpsetUpgradeTest, RefusesTargetsOtherThan19) {
  onnx::ModelProto model = Model(13);
  EXPECT_EQ(CheckOpsetUpgrade(model, 18).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckOpsetUpgrade(Model(13), 21).code(), absl::StatusCode::kInvalidArgument);
}

// The committed torch exports use only listed ops.
TEST(OpsetUpgradeTest, TorchExportsOfTestdataAreRaised) {
  for (const char* name : {"cnn_bn.onnx", "resnet_block.onnx", "deconv.onnx", "linear3d.onnx"}) {
    onnx::ModelProto model = testing::LoadModel(name);
    EXPECT_TRUE(RaiseOpset(&model, kFp8Opset).ok())
        << name << ": " << CheckOpsetUpgrade(model, kFp8Opset);
  }
}

}  // namespace
}  // namespace qcal::server
