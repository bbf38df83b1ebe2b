#include "server/tables/qdq_scale.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/quant_bound.h"

namespace qcal::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(ScalesFromAmax, AmaxOverBound) {
  std::vector<std::string> warnings;
  const std::vector<float> amax = {2.5f, 0.75f};
  absl::StatusOr<std::vector<float>> s = ScalesFromAmax(amax, 127.0f, {"q", "t", 0}, &warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, ElementsAre(2.5f / 127.0f, 0.75f / 127.0f));
  EXPECT_THAT(warnings, IsEmpty());
  // Unsigned 8-bit: bound 255.
  s = ScalesFromAmax(std::vector<float>{6.0f}, *kernels::QuantBound(8, true),
                     {"q", "t", std::nullopt}, &warnings);
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(*s, ElementsAre(6.0f / 255.0f));
}

TEST(ScalesFromAmax, ZeroAmaxGetsScaleOneAndAWarningNamingTensorAndChannel) {
  std::vector<std::string> warnings;
  const std::vector<float> amax = {0.5f, 0.0f, 0.25f};
  absl::StatusOr<std::vector<float>> s =
      ScalesFromAmax(amax, 127.0f, {"conv._weight_quantizer", "conv.weight", 0}, &warnings);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, ElementsAre(0.5f / 127.0f, 1.0f, 0.25f / 127.0f));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("tensor 'conv.weight' channel 1 (axis 0)"));
  EXPECT_THAT(warnings[0], HasSubstr("amax is 0; scale written as 1"));

  warnings.clear();
  s = ScalesFromAmax(std::vector<float>{0.0f}, 127.0f, {"a._input_quantizer", "x", std::nullopt},
                     &warnings);
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(*s, ElementsAre(1.0f));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("quantizer 'a._input_quantizer' tensor 'x' (per-tensor)"));
}

TEST(ScalesFromAmax, NegativeOrNonFiniteAmaxIsAnErrorNamingIt) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (float bad : {-0.5f, nan, inf, -inf}) {
    std::vector<std::string> warnings;
    const std::vector<float> amax = {0.0f, 1.0f, bad};
    absl::StatusOr<std::vector<float>> s =
        ScalesFromAmax(amax, 127.0f, {"fc._weight_quantizer", "fc.weight", 1}, &warnings);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(
        s.status().ToString(),
        HasSubstr("quantizer 'fc._weight_quantizer' tensor 'fc.weight' channel 2 (axis 1)"));
    EXPECT_THAT(s.status().ToString(),
                HasSubstr(bad < 0 && std::isfinite(bad) ? "is negative" : "is not finite"));
    EXPECT_THAT(warnings, IsEmpty()) << "nothing is reported for a refused amax";
  }
}

TEST(ScalesFromAmax, UnderflowingScaleIsClampedToSmallestNormalFloat) {
  std::vector<std::string> warnings;
  const float tiny = std::numeric_limits<float>::denorm_min() * 4;
  absl::StatusOr<std::vector<float>> s =
      ScalesFromAmax(std::vector<float>{tiny}, 127.0f, {"q", "t", std::nullopt}, &warnings);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[0], std::numeric_limits<float>::min());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("below the smallest normal float"));
}

TEST(ScalesFromAmax, RefusesEmptyAmaxAndBadBound) {
  std::vector<std::string> warnings;
  EXPECT_EQ(ScalesFromAmax({}, 127.0f, {"q", "t", std::nullopt}, &warnings).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ScalesFromAmax(std::vector<float>{1.0f}, 0.0f, {"q", "t", std::nullopt}, &warnings)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qcal::server
