#include "kernels/fake_quant.h"

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const std::vector<int64_t> kScalar = {};

TensorView View(const std::vector<float>& data, const std::vector<int64_t>& shape) {
  return {data, shape};
}

TEST(FakeQuantTest, RoundsHalfToEvenWithScaleOne) {
  // amax 127 gives scale 1: x + 0.5 ties expose round-half-to-even.
  const std::vector<float> x = {0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 126.5f, 200.0f, -200.0f};
  const std::vector<int64_t> shape = {8};
  const std::vector<float> amax = {127.0f};
  const auto q = TensorQuant(View(x, shape), View(amax, kScalar), {});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_THAT(q->quantized.data, ElementsAre(0, 2, 2, -2, -0.0f, 126, 127, -127));
  EXPECT_THAT(q->scale.data, ElementsAre(1.0f));
  EXPECT_TRUE(q->scale.shape.empty());
  // Narrow range off: the negative side reaches -128.
  const auto full = TensorQuant(View(x, shape), View(amax, kScalar), {.narrow_range = false});
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->quantized.data[7], -128.0f);
}

TEST(FakeQuantTest, FakeQuantDividesByTheScale) {
  // amax 1: scale 127; 0.5 -> 64 -> 64 / 127.
  const std::vector<float> x = {0.5f, -1.0f, 2.0f, -0.001f, 0.0f};
  const std::vector<float> amax = {1.0f};
  const auto fq = FakeTensorQuant(View(x, {5}), View(amax, kScalar), {});
  ASSERT_TRUE(fq.ok());
  EXPECT_EQ(fq->data[0], 64.0f / 127.0f);
  EXPECT_EQ(fq->data[1], -1.0f);
  EXPECT_EQ(fq->data[2], 1.0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(fq->data[3]), 0x80000000u);  // rounds to -0.0, kept
  EXPECT_EQ(std::bit_cast<uint32_t>(fq->data[4]), 0u);
  EXPECT_THAT(fq->shape, ElementsAre(5));
}

TEST(FakeQuantTest, UnsignedUsesTheDoubledGrid) {
  const std::vector<float> x = {0.0f, 0.5f, 1.0f, 3.0f, -0.0f};
  const std::vector<float> amax = {1.0f};
  const auto q = TensorQuant(View(x, {5}), View(amax, kScalar), {.is_unsigned = true});
  ASSERT_TRUE(q.ok());
  EXPECT_THAT(q->quantized.data, ElementsAre(0, 128, 255, 255, 0));  // 127.5 rounds to 128
  EXPECT_THAT(q->scale.data, ElementsAre(255.0f));
  const std::vector<float> negative = {0.5f, -0.25f};
  EXPECT_EQ(
      TensorQuant(View(negative, {2}), View(amax, kScalar), {.is_unsigned = true}).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(FakeQuantTest, TinyAmaxQuantizesToZeroWithScaleOne) {
  const std::vector<float> x = {1.0f, -1.0f, 1.0f, 1.0f};
  const std::vector<float> amax = {0.0f, 0x1p-24f, 0x1.000002p-24f, 1.0f};  // per row
  const auto q = TensorQuant(View(x, {4, 1}), View(amax, {4, 1}), {});
  ASSERT_TRUE(q.ok());
  EXPECT_THAT(q->quantized.data, ElementsAre(0, -0.0f, 127, 127));
  EXPECT_EQ(q->scale.data[0], 1.0f);
  EXPECT_EQ(q->scale.data[1], 1.0f);
  EXPECT_EQ(q->scale.data[2], 127.0f / 0x1.000002p-24f);
  EXPECT_EQ(q->scale.data[3], 127.0f);
}

TEST(FakeQuantTest, PerChannelAmaxBroadcasts) {
  // [C=2, 3] with amax [2, 1] (axis 0), and [1, 3] (last axis).
  const std::vector<float> x = {1, 2, 4, 1, 2, 4};
  const std::vector<float> axis0 = {4.0f, 2.0f};
  auto q = TensorQuant(View(x, {2, 3}), View(axis0, {2, 1}), {.num_bits = 4});  // bound 7
  ASSERT_TRUE(q.ok());
  EXPECT_THAT(q->quantized.data, ElementsAre(2, 4, 7, 4, 7, 7));  // 1.75 -> 2, 3.5 -> 4
  EXPECT_THAT(q->scale.shape, ElementsAre(2, 1));
  const std::vector<float> last = {1.0f, 2.0f, 4.0f};
  q = TensorQuant(View(x, {2, 3}), View(last, {1, 3}), {.num_bits = 4});
  ASSERT_TRUE(q.ok());
  EXPECT_THAT(q->quantized.data, ElementsAre(7, 7, 7, 7, 7, 7));
  // More dims on amax: the output gains them.
  q = TensorQuant(View(x, {2, 3}), View(last, {1, 1, 3}), {.num_bits = 4});
  ASSERT_TRUE(q.ok());
  EXPECT_THAT(q->quantized.shape, ElementsAre(1, 2, 3));
  const std::vector<float> wrong = {1.0f, 2.0f};
  EXPECT_EQ(TensorQuant(View(x, {2, 3}), View(wrong, {2}), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FakeQuantTest, NanPropagatesAndInfClips) {
  const std::vector<float> x = {kNaN, kInf, -kInf, 1.0f};
  const std::vector<float> amax = {2.0f};
  const auto fq = FakeTensorQuant(View(x, {4}), View(amax, kScalar), {});
  ASSERT_TRUE(fq.ok());
  EXPECT_TRUE(std::isnan(fq->data[0]));
  EXPECT_EQ(fq->data[1], 2.0f);
  EXPECT_EQ(fq->data[2], -2.0f);
  const std::vector<float> nan_amax = {kNaN};
  const auto all_nan = FakeTensorQuant(View(x, {4}), View(nan_amax, kScalar), {});
  ASSERT_TRUE(all_nan.ok());
  for (const float v : all_nan->data) EXPECT_TRUE(std::isnan(v));
}

TEST(FakeQuantTest, BadInputsAreRefused) {
  const std::vector<float> x = {1.0f, 2.0f};
  const std::vector<float> amax = {1.0f};
  const std::vector<float> negative = {-1.0f};
  EXPECT_EQ(TensorQuant(View(x, {2}), View(negative, kScalar), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorQuant(View(x, {2}), View({}, {0}), {}).status().code(),
            absl::StatusCode::kInvalidArgument);  // empty amax
  EXPECT_EQ(TensorQuant(View(x, {3}), View(amax, kScalar), {}).status().code(),
            absl::StatusCode::kInvalidArgument);  // size does not match the shape
  for (const int bits : {0, 1, 17}) {
    EXPECT_EQ(
        FakeTensorQuant(View(x, {2}), View(amax, kScalar), {.num_bits = bits}).status().code(),
        absl::StatusCode::kInvalidArgument)
        << bits;
  }
  EXPECT_TRUE(
      FakeTensorQuant(View(x, {2}), View(amax, kScalar), {.num_bits = 1, .is_unsigned = true})
          .ok());
  const auto empty = FakeTensorQuant(View({}, {0}), View(amax, kScalar), {.is_unsigned = true});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->data.empty());
}

TEST(StraightThroughGradTest, PassesWhereMagnitudeIsWithinAmax) {
  const std::vector<float> x = {0.5f, -1.0f, 1.0000001f, -3.0f, kNaN, 0.0f};
  const std::vector<float> grad = {1, 2, 3, 4, 5, 6};
  const std::vector<float> amax = {1.0f};
  const auto g = StraightThroughGrad(View(x, {6}), View(amax, kScalar), View(grad, {6}));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(g->data, ElementsAre(1, 2, 0, 0, 0, 6));
  // Per channel, a zero-amax channel passes only x == 0.
  const std::vector<float> x2 = {0.0f, 0.5f, 0.5f, 2.0f};
  const std::vector<float> amax2 = {0.0f, 1.0f};
  const std::vector<float> grad2 = {1, 2, 3, 4};
  const auto g2 = StraightThroughGrad(View(x2, {2, 2}), View(amax2, {2, 1}), View(grad2, {2, 2}));
  ASSERT_TRUE(g2.ok());
  EXPECT_THAT(g2->data, ElementsAreArray({1.0f, 0.0f, 3.0f, 0.0f}));
  EXPECT_EQ(
      StraightThroughGrad(View(x, {6}), View(amax, kScalar), View(grad, {2, 3})).status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qcal::kernels
