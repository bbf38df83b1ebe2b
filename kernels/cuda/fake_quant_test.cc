// cuda::TensorQuant / FakeTensorQuant against their CPU twins (kernels/fake_quant.h), bit for
// bit: every dtype of x, per-tensor and per-channel amax on several axes, broadcasting amax,
// zero / tiny / NaN / inf amax, signed, unsigned and narrow ranges, outputs in host and device
// memory, and the same refusals.
#include "kernels/cuda/fake_quant.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_testing.h"

namespace qcal::kernels::cuda {
namespace {

using testing::PlacedBatch;
using testing::Placement;
using testing::RandomBatch;
using testing::RawBatch;
using testing::TestContext;

int64_t Elements(const std::vector<int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

bool SameBits(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

struct ShapeCase {
  std::vector<int64_t> x;
  std::vector<int64_t> amax;
};

std::vector<float> AmaxValues(int64_t n, std::mt19937_64& rng) {
  std::vector<float> out(static_cast<size_t>(n));
  const float special[] = {0.0f, 1e-30f, 0x1p-24f, 0x1.000002p-24f, INFINITY, NAN, 1e30f};
  for (float& a : out) {
    const uint64_t pick = rng() % 10;
    a = pick == 0 ? special[rng() % 7] : 0.1f + static_cast<float>(rng() % 10000) / 1000.0f;
  }
  return out;
}

void Compare(const RawBatch& x, const ShapeCase& c, const std::vector<float>& amax,
             const QuantParams& params, Placement x_place, bool device_out,
             const std::string& what) {
  const TensorView x_view{x.decoded, c.x};
  const TensorView amax_view{amax, c.amax};
  const auto cpu_q = kernels::TensorQuant(x_view, amax_view, params);
  const auto cpu_f = kernels::FakeTensorQuant(x_view, amax_view, params);
  PlacedBatch placed(x, x_place);
  const int64_t total = cpu_q.ok() ? Elements(cpu_q->quantized.shape) : 0;
  std::vector<float> host_out(static_cast<size_t>(total) + 1, -12345.0f);
  std::vector<float> poison(host_out);
  testing::DeviceBytes device(poison.data(), poison.size() * sizeof(float));
  float* out = device_out ? static_cast<float*>(device.data()) : host_out.data();
  const auto read = [&] {
    if (!device_out) return host_out;
    const std::vector<uint8_t> bytes = testing::CopyToHost(device.data(), poison.size() * 4);
    std::vector<float> values(poison.size());
    std::memcpy(values.data(), bytes.data(), bytes.size());
    return values;
  };

  std::vector<float> scale;
  const auto gpu_q = TensorQuant(*TestContext(), placed.ref(), c.x, amax_view, params, out, &scale);
  ASSERT_EQ(gpu_q.status().code(), cpu_q.status().code()) << what << ": " << gpu_q.status();
  if (!cpu_q.ok()) {
    EXPECT_EQ(gpu_q.status().message(), cpu_q.status().message()) << what;
    return;
  }
  EXPECT_EQ(*gpu_q, cpu_q->quantized.shape) << what;
  std::vector<float> got = read();
  for (int64_t i = 0; i < total; ++i) {
    ASSERT_TRUE(SameBits(got[i], cpu_q->quantized.data[i]))
        << what << ": quantized[" << i << "] " << got[i] << " vs " << cpu_q->quantized.data[i]
        << " (x " << x.decoded[i % x.decoded.size()] << ")";
  }
  EXPECT_EQ(got[total], -12345.0f) << what << ": wrote past the end";
  ASSERT_EQ(scale.size(), cpu_q->scale.data.size());
  for (size_t k = 0; k < scale.size(); ++k) EXPECT_TRUE(SameBits(scale[k], cpu_q->scale.data[k]));

  const auto gpu_f = FakeTensorQuant(*TestContext(), placed.ref(), c.x, amax_view, params, out);
  ASSERT_TRUE(gpu_f.ok() && cpu_f.ok()) << what << ": " << gpu_f.status();
  got = read();
  for (int64_t i = 0; i < total; ++i) {
    ASSERT_TRUE(SameBits(got[i], cpu_f->data[i]))
        << what << ": fake[" << i << "] " << got[i] << " vs " << cpu_f->data[i];
  }
}

TEST(FakeQuant, RandomLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  const ShapeCase shapes[] = {
      {{}, {}},                        // a scalar
      {{1000}, {}},                    // per tensor
      {{16, 3, 5, 5}, {16, 1, 1, 1}},  // axis 0 of a conv weight
      {{4, 8, 7, 9}, {1, 8, 1, 1}},    // axis 1
      {{33, 17}, {1, 17}},             // last axis
      {{5}, {3, 1}},                   // amax broadcasts x: output [3, 5]
      {{2, 1, 4}, {3, 1}},             // both broadcast: output [2, 3, 4]
      {{0, 4}, {}},                    // empty x
      {{70000}, {}},
  };
  std::mt19937_64 rng(5);
  uint64_t seed = 500;
  const QuantParams params_list[] = {{8, false, true},  {8, false, false}, {8, true, true},
                                     {4, false, false}, {2, false, true},  {16, true, false},
                                     {1, true, true}};
  for (const ShapeCase& c : shapes) {
    for (const DType dtype : testing::kAllDTypes) {
      for (const QuantParams& params : params_list) {
        // Unsigned quantization refuses negative x: give it magnitudes, and once the raw data.
        RawBatch x = RandomBatch(dtype, Elements(c.x), ++seed,
                                 {.nonfinite = 0.02,
                                  .scale = 3.0f,
                                  .non_negative = params.is_unsigned && seed % 4 != 0});
        const std::vector<float> amax = AmaxValues(Elements(c.amax), rng);
        const std::string what = absl::StrCat(
            "x [", absl::StrJoin(c.x, ","), "] amax [", absl::StrJoin(c.amax, ","), "] ",
            std::string(DTypeName(dtype)), " bits ", params.num_bits,
            params.is_unsigned ? " unsigned" : "", params.narrow_range ? " narrow" : "");
        Compare(x, c, amax, params, Placement::kPageable, false, what);
        Compare(x, c, amax, params, Placement::kDeviceUnaligned, true, what + " device");
      }
    }
  }
}

TEST(FakeQuant, Fp8RandomLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  const ShapeCase shapes[] = {
      {{1000}, {}},
      {{16, 3, 5, 5}, {16, 1, 1, 1}},
      {{4, 8, 7, 9}, {1, 8, 1, 1}},
      {{5}, {3, 1}},
      {{0, 4}, {}},
      {{70000}, {}},
  };
  std::mt19937_64 rng(8);
  uint64_t seed = 800;
  // num_bits and is_unsigned are ignored for FP8 (negative x allowed).
  const QuantParams params_list[] = {
      {.format = QuantFormat::kFp8E4M3},
      {.num_bits = 99, .is_unsigned = true, .format = QuantFormat::kFp8E4M3}};
  for (const ShapeCase& c : shapes) {
    for (const DType dtype : testing::kAllDTypes) {
      for (const QuantParams& params : params_list) {
        RawBatch x = RandomBatch(dtype, Elements(c.x), ++seed, {.nonfinite = 0.02, .scale = 3.0f});
        const std::vector<float> amax = AmaxValues(Elements(c.amax), rng);
        const std::string what =
            absl::StrCat("fp8 x [", absl::StrJoin(c.x, ","), "] amax [", absl::StrJoin(c.amax, ","),
                         "] ", std::string(DTypeName(dtype)), " bits ", params.num_bits);
        Compare(x, c, amax, params, Placement::kPageable, false, what);
        Compare(x, c, amax, params, Placement::kDeviceUnaligned, true, what + " device");
      }
    }
  }
}

TEST(FakeQuant, Fp8TiesSaturationAndSubnormals) {
  QCAL_REQUIRE_GPU();
  // With amax 448 the step is 1: E4M3's ties, its largest value and beyond, its subnormals.
  std::vector<float> values = {1.0625f,  1.1875f,   15.5f, 432.0f,  464.0f,    1e9f,
                               -1e9f,    INFINITY,  NAN,   -0.0f,   0x1p-10f,  0x1.8p-9f,
                               -0x1p-9f, 0x1p-149f, 3.3f,  -240.0f, 0x1.ep-7f, 447.9f};
  RawBatch x;
  x.dtype = DType::kFloat32;
  x.count = static_cast<int64_t>(values.size());
  x.bytes.resize(values.size() * 4);
  std::memcpy(x.bytes.data(), values.data(), x.bytes.size());
  x.decoded = values;
  for (const float a : {448.0f, 224.0f, 1.0f, 0.0f}) {
    const std::vector<float> amax = {a};
    Compare(x, {{x.count}, {}}, amax, {.format = QuantFormat::kFp8E4M3}, Placement::kDevice, false,
            absl::StrCat("fp8 amax ", a));
  }
}

TEST(FakeQuant, UnsignedOnNonNegativeValues) {
  QCAL_REQUIRE_GPU();
  std::vector<float> values = {0.0f, -0.0f, 0.5f, 1.5f, 2.5f, 254.5f, 255.5f, 1e9f, NAN};
  RawBatch x;
  x.dtype = DType::kFloat32;
  x.count = static_cast<int64_t>(values.size());
  x.bytes.resize(values.size() * 4);
  std::memcpy(x.bytes.data(), values.data(), x.bytes.size());
  x.decoded = values;
  const std::vector<float> amax = {255.0f};
  Compare(x, {{9}, {}}, amax, {8, true, true}, Placement::kDevice, false, "unsigned");
}

TEST(FakeQuant, RefusesWhatTheCpuRefuses) {
  QCAL_REQUIRE_GPU();
  const std::vector<float> x = {1.0f, -2.0f, 3.0f, 4.0f};
  const std::vector<int64_t> shape = {4};
  std::vector<float> out(8);
  const std::vector<float> amax = {1.0f};
  const std::vector<float> negative = {-1.0f};
  const std::vector<float> three = {1.0f, 2.0f, 3.0f};
  const std::vector<int64_t> scalar = {};
  const std::vector<int64_t> by_three = {3};
  struct Bad {
    TensorView amax;
    QuantParams params;
    std::vector<int64_t> x_shape;
  };
  const Bad bad[] = {
      {{amax, scalar}, {1, false, true}, shape},      // num_bits
      {{amax, scalar}, {8, true, true}, shape},       // negative x, unsigned
      {{negative, scalar}, {8, false, true}, shape},  // negative amax
      {{three, by_three}, {8, false, true}, shape},   // does not broadcast
      {{{}, scalar}, {8, false, true}, shape},        // empty amax (and shape mismatch)
      {{amax, scalar}, {8, false, true}, {5}},        // x shape mismatch
  };
  for (const Bad& b : bad) {
    const auto want = kernels::TensorQuant({x, b.x_shape}, b.amax, b.params);
    const auto got = TensorQuant(*TestContext(), BatchRef::Float32(x), b.x_shape, b.amax, b.params,
                                 out.data(), nullptr);
    ASSERT_FALSE(want.ok());
    EXPECT_EQ(got.status(), want.status());
  }
  std::vector<int64_t> deep(17, 1);
  EXPECT_EQ(FakeTensorQuant(*TestContext(), BatchRef::Float32(std::span<const float>(x).first(1)),
                            deep, {amax, scalar}, {}, out.data())
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qcal::kernels::cuda
