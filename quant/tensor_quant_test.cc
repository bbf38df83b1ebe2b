#include "quant/tensor_quant.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/tensor.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/utils.h>

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace qcal::quant {
namespace {

std::vector<float> Values(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

at::Tensor Floats(std::vector<float> values, std::vector<int64_t> shape) {
  return at::tensor(values, at::kFloat).reshape(shape);
}

// Same bits, or both NaN.
void ExpectSameBits(const at::Tensor& actual, const at::Tensor& expected) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  const std::vector<float> a = Values(actual), e = Values(expected);
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(e[i])) {
      EXPECT_TRUE(std::isnan(a[i])) << "element " << i;
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(e[i]))
          << "element " << i << ": " << a[i] << " vs " << e[i];
    }
  }
}

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(TensorQuant, DocumentedSeedExample) {
  torch::manual_seed(12345);
  const at::Tensor x = torch::rand(10);
  EXPECT_EQ(Values(x)[0], 0.9817182f);  // the RNG gives the reference's input
  const at::Tensor amax = x.abs().max();
  const auto [q, scale] = tensor_quant(x, amax);
  EXPECT_EQ(Values(q), std::vector<float>({126, 113, 127, 59, 11, 23, 47, 73, 43, 27}));
  EXPECT_NEAR(scale.item<float>(), 128.0057f, 5e-5);
  EXPECT_EQ(scale.dim(), 0);
  const at::Tensor fq = fake_tensor_quant(x, amax);
  const std::vector<float> printed = {0.9843f, 0.8828f, 0.9921f, 0.4609f, 0.0859f,
                                      0.1797f, 0.3672f, 0.5703f, 0.3359f, 0.2109f};
  const std::vector<float> got = Values(fq);
  for (size_t i = 0; i < printed.size(); ++i) EXPECT_NEAR(got[i], printed[i], 5e-5) << i;
  // Exact values of tensor_quant.json doc_seed_example.
  EXPECT_EQ(got[0], 0.98433137f);
  EXPECT_EQ(got[9], 0.21092814f);
  EXPECT_EQ(scale.item<float>(), 128.00568f);
}

TEST(TensorQuant, GridsAndDefaults) {
  const at::Tensor x = Floats({-2.0f, -1.0f, -0.999f, 0.5f, 1.0f, 3.0f}, {6});
  const at::Tensor amax = at::tensor(1.0f);
  // The functions' default is the narrow range: -1 and below map to -127.
  EXPECT_EQ(Values(std::get<0>(tensor_quant(x, amax))),
            std::vector<float>({-127, -127, -127, 64, 127, 127}));
  EXPECT_EQ(Values(std::get<0>(tensor_quant(x, amax, 8, false, /*narrow_range=*/false))),
            std::vector<float>({-128, -127, -127, 64, 127, 127}));
  const at::Tensor positive = Floats({0.0f, 0.5f, 1.0f, 2.0f}, {4});
  EXPECT_EQ(Values(std::get<0>(tensor_quant(positive, amax, 8, /*is_unsigned=*/true))),
            std::vector<float>({0, 128, 255, 255}));
  // 4-bit signed full range: [-8, 7] / 7.
  const at::Tensor fq = fake_tensor_quant(x, amax, 4, false, false);
  EXPECT_EQ(Values(fq)[0], -8.0f / 7.0f);
}

TEST(TensorQuant, ZeroAmaxChannelsGiveZeroAndScaleOne) {
  const at::Tensor x = Floats({1.0f, -1.0f, 0.5f, 0.25f}, {2, 2});
  const at::Tensor amax = Floats({0.0f, 1.0f}, {2, 1});
  const auto [q, scale] = tensor_quant(x, amax);
  EXPECT_EQ(Values(q), std::vector<float>({0, 0, 64, 32}));
  EXPECT_EQ(Values(scale), std::vector<float>({1.0f, 127.0f}));
  EXPECT_EQ(Values(fake_tensor_quant(x, amax)),
            std::vector<float>({0, 0, 64 / 127.0f, 32 / 127.0f}));
}

TEST(TensorQuant, NanPropagatesAndNegativeZeroSurvives) {
  const at::Tensor x = Floats({kNan, -0.0f, 0.3f}, {3});
  const at::Tensor fq = fake_tensor_quant(x, at::tensor(1.0f));
  const std::vector<float> v = Values(fq);
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(std::bit_cast<uint32_t>(v[1]), std::bit_cast<uint32_t>(-0.0f));
  const std::vector<float> all_nan = Values(fake_tensor_quant(x, at::tensor(kNan)));
  for (float f : all_nan) EXPECT_TRUE(std::isnan(f));
}

TEST(TensorQuant, Errors) {
  const at::Tensor x = Floats({0.5f, -0.1f}, {2});
  EXPECT_THROW(fake_tensor_quant(x, at::tensor(-1.0f)), c10::ValueError);
  EXPECT_THROW(fake_tensor_quant(x, at::tensor(1.0f), 8, /*is_unsigned=*/true), c10::ValueError);
  EXPECT_THROW(fake_tensor_quant(x, at::tensor(1.0f), 0), c10::ValueError);
  EXPECT_THROW(fake_tensor_quant(x, at::tensor(1.0f), 1), c10::ValueError);
  EXPECT_THROW(fake_tensor_quant(x, at::empty({0})), c10::ValueError);
  EXPECT_THROW(tensor_quant(Floats({1, 2, 3, 4, 5, 6}, {2, 3}), Floats({1, 1}, {2})),
               c10::ValueError);
  EXPECT_THROW(fake_tensor_quant(at::tensor({1, 2}), at::tensor(1.0f)), c10::TypeError);
  // An empty input gives an empty output, signed or not.
  EXPECT_EQ(fake_tensor_quant(at::empty({0, 3}), at::tensor(1.0f), 8, true).sizes(),
            c10::IntArrayRef({0, 3}));
}

TEST(TensorQuant, TorchPathMatchesKernelsBitForBit) {
  torch::manual_seed(7);
  std::vector<at::Tensor> inputs = {torch::randn({4, 3, 5, 5}) * 3,
                                    Floats({kNan, kInf, -kInf, 0.0f, -0.0f, 1e-30f, 1e30f}, {7})};
  std::vector<at::Tensor> amaxes = {
      at::tensor(2.5f), Floats({1.0f, 0.0f, 5e-8f, 3.0f}, {4, 1, 1, 1}), at::tensor(0.3f)};
  for (int bits : {2, 4, 8, 16}) {
    for (bool narrow : {false, true}) {
      for (size_t i = 0; i < inputs.size(); ++i) {
        for (const at::Tensor& amax : amaxes) {
          if (i == 1 && amax.dim() > 0) continue;
          const auto k = internal::QuantForwardKernels(inputs[i], amax, bits, false, narrow, true);
          const auto t = internal::QuantForwardTorch(inputs[i], amax, bits, false, narrow, true);
          SCOPED_TRACE(testing::Message() << "bits " << bits << " narrow " << narrow);
          ExpectSameBits(t.quantized, k.quantized);
          ExpectSameBits(t.scale, k.scale);
          ExpectSameBits(t.fake, k.fake);
        }
      }
    }
  }
}

TEST(TensorQuant, OtherDtypesKeepTheirDtype) {
  const at::Tensor x = Floats({-1.5f, 0.3f, 0.7f, 2.0f}, {4});
  const at::Tensor amax = at::tensor(1.0f);
  const at::Tensor d = fake_tensor_quant(x.to(at::kDouble), amax.to(at::kDouble));
  EXPECT_EQ(d.scalar_type(), at::kDouble);
  const at::Tensor h = fake_tensor_quant(x.to(at::kHalf), amax);
  EXPECT_EQ(h.scalar_type(), at::kHalf);
  // Half computes in float32 and rounds once: the float32 result rounded to half.
  const at::Tensor x_half = x.to(at::kHalf).to(at::kFloat);
  ExpectSameBits(h.to(at::kFloat), fake_tensor_quant(x_half, amax).to(at::kHalf).to(at::kFloat));
  const auto [q, scale] = tensor_quant(x.to(at::kBFloat16), amax);
  EXPECT_EQ(q.scalar_type(), at::kBFloat16);
  EXPECT_EQ(Values(q), std::vector<float>({-127, 38, 89, 127}));
}

TEST(TensorQuant, StraightThroughGradients) {
  // ste_backward.json: the gradient passes where |x| <= amax (boundary included), not for NaN.
  const at::Tensor x =
      Floats({0.0f, 0.5f, -1.0f, 1.0f, 1.0000001f, -3.0f, kNan, kInf}, {8}).requires_grad_(true);
  const at::Tensor amax = at::tensor(1.0f).requires_grad_(true);
  const at::Tensor g = Floats({1, 2, 3, 4, 5, 6, 7, 8}, {8});
  fake_tensor_quant(x, amax).backward(g);
  EXPECT_EQ(Values(x.grad()), std::vector<float>({1, 2, 3, 4, 0, 0, 0, 0}));
  EXPECT_FALSE(amax.grad().defined());  // amax gets no gradient, as in the reference

  const at::Tensor x2 = Floats({0.5f, 2.0f, -0.25f, 0.75f}, {2, 2}).requires_grad_(true);
  auto [q, scale] = tensor_quant(x2, Floats({1.0f, 0.5f}, {2, 1}));
  EXPECT_FALSE(scale.requires_grad());
  q.sum().backward();
  EXPECT_EQ(Values(x2.grad()), std::vector<float>({1, 0, 1, 0}));
}

TEST(TensorQuant, GradientIsSummedBackWhenAmaxBroadcastsLarger) {
  // tensor_quant.json amax_extra_dims: the output gains amax's leading dimension.
  const at::Tensor x =
      Floats({0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f}, {2, 3}).requires_grad_(true);
  const at::Tensor amax = Floats({1.0f, 2.0f, 3.0f}, {1, 1, 3});
  const at::Tensor y = fake_tensor_quant(x, amax);
  EXPECT_EQ(y.sizes(), c10::IntArrayRef({1, 2, 3}));
  y.sum().backward();
  EXPECT_EQ(x.grad().sizes(), x.sizes());
  EXPECT_EQ(Values(x.grad()), std::vector<float>({1, 1, 1, 0, 1, 1}));
}

// FP8 E4M3 with amax 896: step = amax / 448 = 2, so q = RoundToFp8E4M3(x / 2) and fake = 2 q.
TEST(TensorQuantFp8, RoundsToE4M3WithStepAmaxOver448) {
  const at::Tensor x = Floats({34.0f, 38.0f, -38.0f, 0.5f, 1000.0f, -1e30f, kInf, 0x3p-9f, 0x1p-9f,
                               -0x1p-9f, 0x5p-9f, kNan},
                              {12});
  const at::Tensor amax = at::tensor(896.0f);
  // 17 and 19 are ties (E4M3 steps of 2 in [16, 32)): to the even mantissa, 16 and 20; 500,
  // 1e30 and inf saturate at 448; in the subnormal region (units of 2^-9) 3 * 2^-10 and
  // 5 * 2^-10 are ties giving 2 units, 2^-10 ties down to (signed) zero.
  ExpectSameBits(fake_tensor_quant_fp8(x, amax),
                 Floats({32.0f, 40.0f, -40.0f, 0.5f, 896.0f, -896.0f, 896.0f, 0x1p-7f, 0.0f, -0.0f,
                         0x1p-7f, kNan},
                        {12}));
  const auto [q, scale] = tensor_quant_fp8(x, amax);
  ExpectSameBits(q, Floats({16.0f, 20.0f, -20.0f, 0.25f, 448.0f, -448.0f, 448.0f, 0x1p-8f, 0.0f,
                            -0.0f, 0x1p-8f, kNan},
                           {12}));
  EXPECT_EQ(Values(scale), std::vector<float>({0.5f}));  // 448 / amax
  // Per channel, and a zero amax: q is 0 with x's sign and the scale reads 1.
  const auto [q2, scale2] =
      tensor_quant_fp8(Floats({0.5f, 7.5f, 1.0f, -2.0f}, {2, 2}), Floats({7.0f, 0.0f}, {2, 1}));
  ExpectSameBits(q2, Floats({32.0f, 448.0f, 0.0f, -0.0f}, {2, 2}));
  EXPECT_EQ(Values(scale2), std::vector<float>({64.0f, 1.0f}));
  EXPECT_EQ(scale2.sizes(), c10::IntArrayRef({2, 1}));
}

TEST(TensorQuantFp8, OtherDtypesKeepTheirDtypeAndErrors) {
  const at::Tensor x = Floats({-1.5f, 0.3f, 0.7f, 2.0f}, {4});
  const at::Tensor amax = at::tensor(1.0f);
  const at::Tensor f = fake_tensor_quant_fp8(x, amax);
  const at::Tensor d = fake_tensor_quant_fp8(x.to(at::kDouble), amax.to(at::kDouble));
  EXPECT_EQ(d.scalar_type(), at::kDouble);
  ExpectSameBits(d.to(at::kFloat), f);
  const at::Tensor h = fake_tensor_quant_fp8(x.to(at::kHalf), amax);
  EXPECT_EQ(h.scalar_type(), at::kHalf);
  ExpectSameBits(
      h.to(at::kFloat),
      fake_tensor_quant_fp8(x.to(at::kHalf).to(at::kFloat), amax).to(at::kHalf).to(at::kFloat));
  EXPECT_THROW(fake_tensor_quant_fp8(x, at::tensor(-1.0f)), c10::ValueError);
  EXPECT_THROW(fake_tensor_quant_fp8(x, at::empty({0})), c10::ValueError);
  EXPECT_THROW(tensor_quant_fp8(Floats({1, 2, 3, 4, 5, 6}, {2, 3}), Floats({1, 1}, {2})),
               c10::ValueError);
  EXPECT_THROW(fake_tensor_quant_fp8(at::tensor({1, 2}), amax), c10::TypeError);
  EXPECT_THROW(fake_tensor_quant_fp8(x, at::tensor({1})), c10::TypeError);
  EXPECT_EQ(fake_tensor_quant_fp8(at::empty({0, 3}), amax).sizes(), c10::IntArrayRef({0, 3}));
}

TEST(TensorQuantFp8, StraightThroughGradients) {
  // ModelOpt's ScaledE4M3Function backward: grad where |x| <= amax, as the int functions.
  const at::Tensor x =
      Floats({0.0f, 0.5f, -1.0f, 1.0f, 1.0000001f, -3.0f, kNan}, {7}).requires_grad_(true);
  const at::Tensor amax = at::tensor(1.0f).requires_grad_(true);
  fake_tensor_quant_fp8(x, amax).backward(Floats({1, 2, 3, 4, 5, 6, 7}, {7}));
  EXPECT_EQ(Values(x.grad()), std::vector<float>({1, 2, 3, 4, 0, 0, 0}));
  EXPECT_FALSE(amax.grad().defined());
  const at::Tensor x2 = Floats({0.5f, 2.0f, -0.25f, 0.75f}, {2, 2}).requires_grad_(true);
  auto [q, scale] = tensor_quant_fp8(x2, Floats({1.0f, 0.5f}, {2, 1}));
  EXPECT_FALSE(scale.requires_grad());
  q.sum().backward();
  EXPECT_EQ(Values(x2.grad()), std::vector<float>({1, 0, 1, 0}));
}

}  // namespace
}  // namespace qcal::quant
