// FP8 E4M3 fake quant (fake_quant.h, params.format = kFp8E4M3), values worked out by hand.
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/fake_quant.h"

namespace qcal::kernels {
namespace {

using ::testing::ElementsAre;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const std::vector<int64_t> kScalar = {};
constexpr QuantParams kFp8 = {.format = QuantFormat::kFp8E4M3};

TensorView View(const std::vector<float>& data, const std::vector<int64_t>& shape) {
  return {data, shape};
}

TEST(FakeQuantFp8Test, AmaxOf448RoundsXItself) {
  const std::vector<float> x = {1.0625f, 1.1875f, 500.0f, -500.0f, 0.001f, -0.0f, 17.0f, 3.3f};
  const std::vector<float> amax = {448.0f};
  const auto q = TensorQuant(View(x, {8}), View(amax, kScalar), kFp8);
  ASSERT_TRUE(q.ok()) << q.status();
  // Ties to even (1.0625 -> 1, 1.1875 -> 1.25, 17 -> 16), saturation, 0.001 -> 2^-9, -0 kept.
  EXPECT_THAT(q->quantized.data,
              ElementsAre(1.0f, 1.25f, 448.0f, -448.0f, 0x1p-9f, -0.0f, 16.0f, 3.25f));
  EXPECT_TRUE(std::signbit(q->quantized.data[5]));
  EXPECT_THAT(q->scale.data, ElementsAre(1.0f));
  const auto fq = FakeTensorQuant(View(x, {8}), View(amax, kScalar), kFp8);
  ASSERT_TRUE(fq.ok());
  EXPECT_EQ(fq->data, q->quantized.data);
}

TEST(FakeQuantFp8Test, ScaleIsAmaxOver448) {
  // amax 224: step 0.5. 0.53 -> 1.06 -> 1; 100 -> 200, the tie of 192 and 208 -> 192;
  // 300 -> 600 -> 448; -7.3 -> -14.6 -> -15; 0.0009 -> 0.0018 -> 2^-9 (nearest subnormal).
  const std::vector<float> x = {0.53f, 100.0f, 300.0f, -7.3f, 0.0009f};
  const std::vector<float> amax = {224.0f};
  const auto q = TensorQuant(View(x, {5}), View(amax, kScalar), kFp8);
  ASSERT_TRUE(q.ok());
  EXPECT_THAT(q->quantized.data, ElementsAre(1.0f, 192.0f, 448.0f, -15.0f, 0x1p-9f));
  EXPECT_THAT(q->scale.data, ElementsAre(2.0f));  // 448 / amax
  const auto fq = FakeTensorQuant(View(x, {5}), View(amax, kScalar), kFp8);
  ASSERT_TRUE(fq.ok());
  EXPECT_THAT(fq->data, ElementsAre(0.5f, 96.0f, 224.0f, -7.5f, 0x1p-10f));
  // A step that is not a power of two: amax 1 gives step fl(1/448), and x = amax maps to 448.
  const std::vector<float> one = {1.0f};
  const std::vector<float> y = {1.0f, -1.0f, 0.25f};
  const auto f1 = FakeTensorQuant(View(y, {3}), View(one, kScalar), kFp8);
  ASSERT_TRUE(f1.ok());
  const float step = 1.0f / 448.0f;
  EXPECT_EQ(f1->data[0], 448.0f * step);
  EXPECT_EQ(f1->data[1], -448.0f * step);
  EXPECT_EQ(f1->data[2], 112.0f * step);  // 0.25 / step = 112.00000x -> 112
}

TEST(FakeQuantFp8Test, PerChannelAmaxBroadcasts) {
  const std::vector<float> x = {1.3f, -2.6f, 500.0f, 1.3f, -2.6f, 500.0f};
  const std::vector<float> amax = {224.0f, 448.0f};  // steps 0.5 and 1
  const auto fq = FakeTensorQuant(View(x, {2, 3}), View(amax, {2, 1}), kFp8);
  ASSERT_TRUE(fq.ok()) << fq.status();
  // Row 0: 2.6 -> 2.5 -> 1.25; 5.2 -> 5 -> 2.5; 1000 -> 448 -> 224. Row 1: 1.25, -2.5, 448.
  EXPECT_THAT(fq->data, ElementsAre(1.25f, -2.5f, 224.0f, 1.25f, -2.5f, 448.0f));
  EXPECT_THAT(fq->shape, ElementsAre(2, 3));
  // Axis 1 of a [1, 2, 1, 2] tensor.
  const auto fq1 = FakeTensorQuant(View(x, {1, 2, 1, 3}), View(amax, {1, 2, 1, 1}), kFp8);
  ASSERT_TRUE(fq1.ok());
  EXPECT_EQ(fq1->data, fq->data);
}

TEST(FakeQuantFp8Test, TinyAmaxGivesZeroAsTheIntPathDoes) {
  const std::vector<float> x = {1.0f, -1.0f, kInf, 1.0f, 1.0f};
  const std::vector<float> amax = {0.0f, 0x1p-24f, 0.0f, kNaN, 448.0f};  // per row
  const auto q = TensorQuant(View(x, {5, 1}), View(amax, {5, 1}), kFp8);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(std::bit_cast<uint32_t>(q->quantized.data[0]), 0u);
  EXPECT_EQ(std::bit_cast<uint32_t>(q->quantized.data[1]), 0x80000000u);  // -0, as int's
  EXPECT_TRUE(std::isnan(q->quantized.data[2]));
  EXPECT_TRUE(std::isnan(q->quantized.data[3]));
  EXPECT_EQ(q->quantized.data[4], 1.0f);
  EXPECT_EQ(q->scale.data[0], 1.0f);
  EXPECT_EQ(q->scale.data[1], 1.0f);
  EXPECT_EQ(q->scale.data[4], 1.0f);
  const auto int_q = TensorQuant(View(x, {5, 1}), View(amax, {5, 1}), {});
  ASSERT_TRUE(int_q.ok());
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ(std::bit_cast<uint32_t>(q->quantized.data[k]) & 0x80000000u,
              std::bit_cast<uint32_t>(int_q->quantized.data[k]) & 0x80000000u)
        << k;
    EXPECT_EQ(std::isnan(q->quantized.data[k]), std::isnan(int_q->quantized.data[k])) << k;
  }
  const auto fq = FakeTensorQuant(View(x, {5, 1}), View(amax, {5, 1}), kFp8);
  ASSERT_TRUE(fq.ok());
  EXPECT_EQ(fq->data[0], 0.0f);
  EXPECT_EQ(std::bit_cast<uint32_t>(fq->data[1]), 0x80000000u);
}

TEST(FakeQuantFp8Test, InfiniteAmaxGivesNaNAsTheIntPathDoes) {
  const std::vector<float> x = {1.0f, -3.0f};
  const std::vector<float> amax = {kInf};
  const auto fp8 = FakeTensorQuant(View(x, {2}), View(amax, kScalar), kFp8);
  const auto int8 = FakeTensorQuant(View(x, {2}), View(amax, kScalar), {});
  ASSERT_TRUE(fp8.ok() && int8.ok());
  for (int k = 0; k < 2; ++k) {
    EXPECT_TRUE(std::isnan(fp8->data[k])) << k;
    EXPECT_TRUE(std::isnan(int8->data[k])) << k;
  }
}

TEST(FakeQuantFp8Test, IgnoresTheIntegerParameters) {
  const std::vector<float> x = {-3.3f, 0.7f, -1000.0f};
  const std::vector<float> amax = {10.0f};
  const auto plain = FakeTensorQuant(View(x, {3}), View(amax, kScalar), kFp8);
  const auto odd = FakeTensorQuant(View(x, {3}), View(amax, kScalar),
                                   {.num_bits = 99,
                                    .is_unsigned = true,
                                    .narrow_range = false,
                                    .format = QuantFormat::kFp8E4M3});
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(odd.ok()) << odd.status();  // negative x allowed, num_bits not checked
  EXPECT_EQ(plain->data, odd->data);
  EXPECT_EQ(plain->data[2], -448.0f * (10.0f / 448.0f));
}

TEST(FakeQuantFp8Test, RefusesWhatTheIntPathRefuses) {
  const std::vector<float> x = {1.0f};
  const std::vector<float> negative = {-1.0f};
  const std::vector<float> none = {};
  EXPECT_EQ(FakeTensorQuant(View(x, {1}), View(negative, kScalar), kFp8).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FakeTensorQuant(View(x, {1}), View(none, {0}), kFp8).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<float> two = {1.0f, 2.0f};
  EXPECT_EQ(FakeTensorQuant(View(x, {2}), View(two, kScalar), kFp8).status().code(),
            absl::StatusCode::kInvalidArgument);  // shape does not match data
  const std::vector<float> three = {1.0f, 2.0f, 3.0f};
  EXPECT_EQ(FakeTensorQuant(View(two, {2}), View(three, {3}), kFp8).status().code(),
            absl::StatusCode::kInvalidArgument);  // does not broadcast
}

}  // namespace
}  // namespace qcal::kernels
