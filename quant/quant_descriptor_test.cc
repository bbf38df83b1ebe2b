#include "quant/quant_descriptor.h"

#include <c10/util/Exception.h>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quant/quant_descriptor_json.h"

namespace qcal::quant {
namespace {

using Json = nlohmann::json;

TEST(QuantDescriptor, DefaultsAreTheReferences) {
  const QuantDescriptor d;
  EXPECT_EQ(d.num_bits(), 8);
  EXPECT_FALSE(d.name().has_value());
  EXPECT_TRUE(d.fake_quant());
  EXPECT_TRUE(d.axis().per_tensor());
  EXPECT_FALSE(d.amax().has_value());
  EXPECT_FALSE(d.learn_amax());
  EXPECT_FALSE(d.scale_amax().has_value());
  EXPECT_EQ(d.calib_method(), "max");
  EXPECT_FALSE(d.is_unsigned());
  // The descriptor's narrow_range default is false (tensor_quant's own default is true).
  EXPECT_FALSE(d.narrow_range());
  EXPECT_EQ(d.bound(), 127);
  EXPECT_EQ(d.str(), "QuantDescriptor(8bit fake axis= per-tensor)");
}

TEST(QuantDescriptor, PredefinedDescriptors) {
  EXPECT_EQ(QUANT_DESC_8BIT_PER_TENSOR, QuantDescriptor());
  EXPECT_TRUE(QUANT_DESC_UNSIGNED_8BIT_PER_TENSOR.is_unsigned());
  EXPECT_EQ(QUANT_DESC_UNSIGNED_8BIT_PER_TENSOR.bound(), 255);
  for (const QuantDescriptor* d :
       {&QUANT_DESC_8BIT_CONV1D_WEIGHT_PER_CHANNEL, &QUANT_DESC_8BIT_CONV2D_WEIGHT_PER_CHANNEL,
        &QUANT_DESC_8BIT_CONV3D_WEIGHT_PER_CHANNEL, &QUANT_DESC_8BIT_LINEAR_WEIGHT_PER_ROW,
        &QUANT_DESC_8BIT_CONVTRANSPOSE1D_WEIGHT_PER_CHANNEL,
        &QUANT_DESC_8BIT_CONVTRANSPOSE2D_WEIGHT_PER_CHANNEL,
        &QUANT_DESC_8BIT_CONVTRANSPOSE3D_WEIGHT_PER_CHANNEL}) {
    EXPECT_EQ(d->axis(), QuantAxis(0));
    EXPECT_FALSE(d->axis().is_tuple());
    EXPECT_EQ(d->str(), "QuantDescriptor(8bit fake axis=0)");
  }
}

TEST(QuantDescriptor, PrintsLikeTheReference) {
  // tensor_quantizer.json descriptor_str_full and descriptor_str_learn.
  const QuantDescriptor full({.num_bits = 8,
                              .fake_quant = false,
                              .axis = QuantAxis::Tuple({1}),
                              .amax = DescriptorAmax::List({1.0f, 2.0f}),
                              .scale_amax = 0.5,
                              .is_unsigned = true});
  EXPECT_EQ(full.str(),
            "QuantDescriptor(unsigned 8bit real axis=(1,) amax=[1. 2.] full_range scale_amax=0.5)");
  const QuantDescriptor learn(
      {.num_bits = 8, .amax = DescriptorAmax::Scalar(2.0f), .learn_amax = true});
  EXPECT_EQ(learn.str(),
            "QuantDescriptor(8bit fake axis= per-tensor amax=2.0 full_range learn_amax)");
  const QuantDescriptor named({.num_bits = 4, .name = "conv1", .axis = QuantAxis::Tuple({0, 1})});
  EXPECT_EQ(named.str(), "conv1: (4bit fake axis=(0, 1))");
}

TEST(QuantDescriptor, RefusesBadValues) {
  EXPECT_THROW(QuantDescriptor({.num_bits = -1}), c10::ValueError);
  EXPECT_THROW(QuantDescriptor({.num_bits = 0}), c10::ValueError);
  EXPECT_THROW(QuantDescriptor({.num_bits = 1}), c10::ValueError);
  EXPECT_THROW(QuantDescriptor({.num_bits = 17}), c10::ValueError);
  EXPECT_NO_THROW(QuantDescriptor({.num_bits = 1, .is_unsigned = true}));
  EXPECT_NO_THROW(QuantDescriptor({.num_bits = 16}));
  EXPECT_THROW(QuantDescriptor({.axis = QuantAxis::Tuple({})}), c10::ValueError);
  EXPECT_THROW(QuantDescriptor({.axis = QuantAxis::Tuple({1, 1})}), c10::ValueError);
  EXPECT_THROW(QuantDescriptor({.axis = 0, .learn_amax = true}), c10::TypeError);
  EXPECT_THROW(QuantDescriptor({.amax = DescriptorAmax::Scalar(-1.0f)}), c10::ValueError);
  EXPECT_THROW(QuantDescriptor({.amax = DescriptorAmax{{1.0f, 2.0f}, {3}}}), c10::ValueError);
  EXPECT_THROW(QuantDescriptor({.scale_amax = 0.0}), c10::ValueError);
  EXPECT_THROW(QuantDescriptor({.calib_method = "entropy"}), c10::ValueError);
}

// pytorch-quantization's num_bits=(4, 3) is FP8 E4M3: 8-bit, signed, printed as the tuple.
TEST(QuantDescriptor, Fp8E4M3IsNumBitsFourThree) {
  const QuantDescriptor fp8({.format = kernels::QuantFormat::kFp8E4M3});
  EXPECT_EQ(fp8.num_bits(), 8);
  EXPECT_EQ(fp8.num_bits_str(), "(4, 3)");
  EXPECT_EQ(fp8.str(), "QuantDescriptor((4, 3)bit fake axis= per-tensor)");
  EXPECT_NE(fp8, QuantDescriptor());
  EXPECT_EQ(QuantDescriptorFromJson(Json::parse(R"({"num_bits": [4, 3], "axis": 0})")),
            QuantDescriptor({.axis = 0, .format = kernels::QuantFormat::kFp8E4M3}));
  EXPECT_EQ(QuantDescriptorFromJson(Json::parse(R"({"num_bits": {"tuple": [4, 3]}})")), fp8);
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse(R"({"num_bits": [5, 2]})")), c10::ValueError);
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse(R"({"num_bits": [4, 3], "unsigned": true})")),
               c10::ValueError);
  EXPECT_THROW(QuantDescriptor({.num_bits = 4, .format = kernels::QuantFormat::kFp8E4M3}),
               c10::ValueError);
}

TEST(QuantAxis, ResolvesAgainstTheRank) {
  EXPECT_EQ(QuantAxis(-1).Resolve(4), std::vector<int64_t>({3}));
  EXPECT_EQ(QuantAxis::Tuple({0, -1}).Resolve(2), std::vector<int64_t>({0, 1}));
  EXPECT_TRUE(QuantAxis().Resolve(3).empty());
  EXPECT_THROW(QuantAxis(5).Resolve(4), c10::ValueError);
  EXPECT_THROW(QuantAxis(-3).Resolve(2), c10::ValueError);
  EXPECT_THROW(QuantAxis::Tuple({1, -1}).Resolve(2), c10::ValueError);
  EXPECT_EQ(QuantAxis().str(), "None");
  EXPECT_EQ(QuantAxis(0).str(), "0");
  EXPECT_EQ(QuantAxis::Tuple({0}).str(), "(0,)");
}

TEST(QuantDescriptorFromJson, KeywordArguments) {
  const QuantDescriptor d = QuantDescriptorFromJson(
      Json::parse(R"({"num_bits": 4, "axis": {"tuple": [0]}, "unsigned": true,
                      "fake_quant": false, "calib_method": "max", "amax": [[1.0, 2], [3.0, 4.0]],
                      "scale_amax": 2})"));
  EXPECT_EQ(d.num_bits(), 4);
  EXPECT_EQ(d.axis(), QuantAxis::Tuple({0}));
  EXPECT_TRUE(d.is_unsigned());
  EXPECT_FALSE(d.fake_quant());
  ASSERT_TRUE(d.amax().has_value());
  EXPECT_EQ(d.amax()->shape, std::vector<int64_t>({2, 2}));
  EXPECT_EQ(d.amax()->values, std::vector<float>({1.0f, 2.0f, 3.0f, 4.0f}));
  EXPECT_EQ(*d.scale_amax(), 2.0);
  EXPECT_EQ(QuantDescriptorFromJson(Json::parse(R"({"axis": [0, 1]})")).axis(),
            QuantAxis::Tuple({0, 1}));
  EXPECT_EQ(QuantDescriptorFromJson(Json::parse("{}")), QuantDescriptor());
}

TEST(QuantDescriptorFromJson, ReferenceTypeErrors) {
  // tensor_quantizer.json descriptor_* cases.
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse(R"({"num_bits": "8"})")), c10::TypeError);
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse(R"({"num_bits": 8.0})")), c10::TypeError);
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse(R"({"amax": 2})")), c10::TypeError);
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse(R"({"learn_amax": true, "axis": [0]})")),
               c10::TypeError);
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse(R"({"num_bits": -1})")), c10::ValueError);
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse(R"({"bits": 8})")), c10::TypeError);
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse(R"({"amax": [[1.0], [2.0, 3.0]]})")),
               c10::ValueError);
  EXPECT_THROW(QuantDescriptorFromJson(Json::parse("[]")), c10::TypeError);
}

}  // namespace
}  // namespace qcal::quant
