#include "server/onnx/weight_amax.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

namespace qcal::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

onnx::NodeProto Node(const std::string& op, int64_t trans_b = -1) {
  onnx::NodeProto node;
  node.set_op_type(op);
  node.set_name("/m/" + op);
  node.add_input("x");
  node.add_input("m.weight");
  if (trans_b >= 0) {
    onnx::AttributeProto* attr = node.add_attribute();
    attr->set_name("transB");
    attr->set_type(onnx::AttributeProto::INT);
    attr->set_i(trans_b);
  }
  return node;
}

TEST(WeightChannelAxis, PerOp) {
  const QdqTarget trt = QdqTarget::kTensorRT;
  const QdqTarget ort = QdqTarget::kOnnxRuntime;
  EXPECT_EQ(*WeightChannelAxis(Node("Conv"), 4, trt), 0);
  EXPECT_EQ(*WeightChannelAxis(Node("Conv"), 3, ort), 0);
  EXPECT_EQ(*WeightChannelAxis(Node("ConvTranspose"), 4, trt), 0);
  EXPECT_EQ(*WeightChannelAxis(Node("ConvTranspose"), 4, ort), 1);
  EXPECT_EQ(*WeightChannelAxis(Node("Gemm", 1), 2, trt), 0);
  EXPECT_EQ(*WeightChannelAxis(Node("Gemm", 0), 2, trt), 1);
  EXPECT_EQ(*WeightChannelAxis(Node("Gemm"), 2, trt), 1) << "transB defaults to 0";
  EXPECT_EQ(*WeightChannelAxis(Node("MatMul"), 2, trt), 1);
  EXPECT_EQ(*WeightChannelAxis(Node("MatMul"), 3, trt), 2);
}

TEST(WeightChannelAxis, RefusesRanksThatDoNotFit) {
  absl::StatusOr<int> axis = WeightChannelAxis(Node("MatMul"), 1, QdqTarget::kTensorRT);
  ASSERT_FALSE(axis.ok());
  EXPECT_THAT(axis.status().ToString(), HasSubstr("weight 'm.weight' has rank 1"));
  EXPECT_FALSE(WeightChannelAxis(Node("Gemm", 1), 3, QdqTarget::kTensorRT).ok());
  EXPECT_FALSE(WeightChannelAxis(Node("Conv"), 2, QdqTarget::kTensorRT).ok());
  EXPECT_FALSE(WeightChannelAxis(Node("Add"), 2, QdqTarget::kTensorRT).ok());
}

onnx::TensorProto Weight(std::vector<int64_t> dims, const std::vector<float>& values, bool raw) {
  onnx::TensorProto t;
  t.set_name("w");
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  if (raw) {
    std::string bytes(values.size() * sizeof(float), '\0');
    std::memcpy(bytes.data(), values.data(), bytes.size());
    t.set_raw_data(bytes);
  } else {
    for (float v : values) t.add_float_data(v);
  }
  return t;
}

TEST(PerChannelAbsMax, ReducesOverEveryOtherAxis) {
  // [2, 3, 2]: w[i][c][k] = values[(i * 3 + c) * 2 + k].
  const std::vector<float> values = {1,  -2, 3,     0.5f, 0, 0,  //
                                     -4, 1,  0.25f, 7,    0, -0.125f};
  for (bool raw : {false, true}) {
    const onnx::TensorProto w = Weight({2, 3, 2}, values, raw);
    EXPECT_THAT(*PerChannelAbsMax(w, 0), ElementsAre(3.0f, 7.0f));
    EXPECT_THAT(*PerChannelAbsMax(w, 1), ElementsAre(4.0f, 7.0f, 0.125f));
    EXPECT_THAT(*PerChannelAbsMax(w, 2), ElementsAre(4.0f, 7.0f));
  }
}

TEST(PerChannelAbsMax, NonFiniteWeightIsAnErrorNamingTensorAndChannel) {
  const onnx::TensorProto w =
      Weight({3, 2}, {1, 2, 3, std::numeric_limits<float>::quiet_NaN(), 5, 6}, false);
  absl::StatusOr<std::vector<float>> amax = PerChannelAbsMax(w, 0);
  ASSERT_FALSE(amax.ok());
  EXPECT_EQ(amax.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(amax.status().ToString(), HasSubstr("weight 'w' channel 1 (axis 0) holds nan"));
}

TEST(PerChannelAbsMax, RefusesWhatItCannotRead) {
  onnx::TensorProto half = Weight({2}, {1, 2}, false);
  half.set_data_type(onnx::TensorProto::FLOAT16);
  EXPECT_THAT(PerChannelAbsMax(half, 0).status().ToString(), HasSubstr("not float32"));

  onnx::TensorProto external = Weight({2}, {}, false);
  external.set_data_location(onnx::TensorProto::EXTERNAL);
  EXPECT_THAT(PerChannelAbsMax(external, 0).status().ToString(), HasSubstr("external data"));

  const onnx::TensorProto short_data = Weight({2, 2}, {1, 2, 3}, false);
  EXPECT_THAT(PerChannelAbsMax(short_data, 0).status().ToString(),
              HasSubstr("weight 'w': cannot read its data"));

  EXPECT_THAT(PerChannelAbsMax(Weight({2, 2}, {1, 2, 3, 4}, false), 2).status().ToString(),
              HasSubstr("channel axis 2 is out of range for rank 2"));
}

}  // namespace
}  // namespace qcal::server
