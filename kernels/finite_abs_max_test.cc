#include "kernels/finite_abs_max.h"

#include <bit>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(FiniteAbsMaxTest, MaxMagnitudeOfFiniteValues) {
  const std::vector<float> x = {0.5f, -3.25f, 2.0f, -0.0f, 1e-45f};
  const FiniteAbsMaxResult r = FiniteAbsMax(x);
  EXPECT_EQ(r.abs_max, 3.25f);
  EXPECT_EQ(r.nonfinite, 0);
}

TEST(FiniteAbsMaxTest, NanAndInfAreCountedAndLeftOut) {
  const std::vector<float> x = {kNaN, 1.5f, -kInf, kInf, -2.5f, -kNaN};
  const FiniteAbsMaxResult r = FiniteAbsMax(x);
  EXPECT_EQ(r.abs_max, 2.5f);
  EXPECT_EQ(r.nonfinite, 4);
}

TEST(FiniteAbsMaxTest, NothingFiniteGivesPositiveZero) {
  const std::vector<float> x = {kNaN, -kInf, -0.0f};
  const FiniteAbsMaxResult r = FiniteAbsMax(x);
  EXPECT_EQ(std::bit_cast<uint32_t>(r.abs_max), 0u);
  EXPECT_EQ(r.nonfinite, 2);
  EXPECT_EQ(FiniteAbsMax({}).abs_max, 0.0f);
}

TEST(FiniteAbsMaxTest, LargeSpansUseEveryChunk) {
  // The maximum sits near the end and non-finite values are spread out, so every chunk counts.
  std::vector<float> x(3 << 20, 1.0f);
  x[(3 << 20) - 5] = -7.0f;
  for (size_t i = 17; i < x.size(); i += 100003) x[i] = kNaN;
  x[1] = kInf;
  const FiniteAbsMaxResult r = FiniteAbsMax(x);
  EXPECT_EQ(r.abs_max, 7.0f);
  EXPECT_EQ(r.nonfinite, static_cast<int64_t>((x.size() - 17 + 100002) / 100003) + 1);
}

}  // namespace
}  // namespace qcal::kernels
