#include "server/onnx/onnx_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "server/onnx/testing.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;
using testing::ReadTestdata;

TEST(ParseOnnxModel, AcceptsEachOpset13Export) {
  for (const char* name : {"cnn_bn.onnx", "resnet_block.onnx", "linear3d.onnx", "deconv.onnx",
                           "dead_channel.onnx", "reuse.onnx", "gemm_transb0.onnx"}) {
    absl::StatusOr<onnx::ModelProto> model = ParseOnnxModel(ReadTestdata(name));
    ASSERT_TRUE(model.ok()) << name << ": " << model.status();
    EXPECT_EQ(DefaultOpset(*model), 13) << name;
    EXPECT_GT(model->graph().node_size(), 0) << name;
  }
}

TEST(ParseOnnxModel, RefusesOpset11NamingTheOpsetAndTheMinimum) {
  absl::StatusOr<onnx::ModelProto> model = ParseOnnxModel(ReadTestdata("opset11.onnx"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().ToString(), HasSubstr("opset 11"));
  EXPECT_THAT(model.status().ToString(), HasSubstr("opset 13 is the minimum"));
}

TEST(ParseOnnxModel, RefusesEmptyBytes) {
  absl::StatusOr<onnx::ModelProto> model = ParseOnnxModel("");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().ToString(), HasSubstr("empty"));
}

TEST(ParseOnnxModel, RefusesBytesThatAreNotAModelProto) {
  // Field 15, wire type 7: no such wire type, so protobuf cannot parse it.
  absl::StatusOr<onnx::ModelProto> model = ParseOnnxModel(std::string("\x7f\xff\xff\xff", 4));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().ToString(), HasSubstr("does not parse as a ModelProto"));
}

TEST(ParseOnnxModel, RefusesTruncatedModel) {
  const std::string bytes = ReadTestdata("cnn_bn.onnx");
  absl::StatusOr<onnx::ModelProto> model = ParseOnnxModel(bytes.substr(0, bytes.size() / 2));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseOnnxModel, RefusesBytesThatParseAsAnEmptyModel) {
  // A known field with the wrong wire type parses as an unknown field: an empty ModelProto, which
  // the checker refuses (no ir_version, no graph).
  absl::StatusOr<onnx::ModelProto> model = ParseOnnxModel(std::string_view("\x0a\x00", 2));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().ToString(), HasSubstr("ONNX checker refuses the model"));
}

TEST(ParseOnnxModel, RefusesModelTheCheckerRefuses) {
  onnx::ModelProto model = testing::LoadModel("dead_channel.onnx");
  model.mutable_graph()->mutable_node(0)->set_op_type("NoSuchOp");
  absl::StatusOr<onnx::ModelProto> parsed = ParseOnnxModel(model.SerializeAsString());
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().ToString(), HasSubstr("ONNX checker refuses the model"));
  EXPECT_THAT(parsed.status().ToString(), HasSubstr("NoSuchOp"));
}

TEST(ParseOnnxModel, RefusesModelWithoutDefaultOpset) {
  onnx::ModelProto model = testing::LoadModel("dead_channel.onnx");
  model.mutable_opset_import(0)->set_domain("com.example");
  EXPECT_EQ(DefaultOpset(model), 0);
  absl::Status s = CheckMinOpset(model);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.ToString(), HasSubstr("imports no default-domain (ai.onnx) opset"));
}

TEST(DefaultOpset, ReadsAiOnnxDomainToo) {
  onnx::ModelProto model;
  onnx::OperatorSetIdProto* ml = model.add_opset_import();
  ml->set_domain("ai.onnx.ml");
  ml->set_version(3);
  onnx::OperatorSetIdProto* core = model.add_opset_import();
  core->set_domain("ai.onnx");
  core->set_version(17);
  EXPECT_EQ(DefaultOpset(model), 17);
  EXPECT_TRUE(CheckMinOpset(model).ok());
}

}  // namespace
}  // namespace qcal::server
