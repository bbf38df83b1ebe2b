// The ATen counter (quant/partial_count.h) against qcal's CPU kernels, bit for bit, on CPU tensors:
// the same code then runs on CUDA tensors, where only the device differs.
#include "quant/partial_count.h"

#include <ATen/ops/cat.h>
#include <ATen/ops/full.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/zeros.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qcal/partial_state.h"

namespace qcal::quant {
namespace {

DType WireDType(at::ScalarType t) {
  switch (t) {
    case at::kHalf:
      return DType::kFloat16;
    case at::kBFloat16:
      return DType::kBFloat16;
    case at::kDouble:
      return DType::kFloat64;
    default:
      return DType::kFloat32;
  }
}

// The kernels' state of `tensor` (the server's): raw bytes decoded as a Record batch would be.
v1::PartialState Kernels(const at::Tensor& tensor, const PartialTarget& target) {
  const at::Tensor cpu = tensor.contiguous();
  const TensorView view{
      WireDType(cpu.scalar_type()), cpu.sizes(),
      std::span(static_cast<const std::byte*>(cpu.data_ptr()), static_cast<size_t>(cpu.nbytes()))};
  absl::StatusOr<v1::PartialState> state =
      target.histogram ? CountHistogramPartial(view, target.num_bins, target.skip_zeros)
                       : CountMaxPartial(view, target.axis);
  EXPECT_TRUE(state.ok()) << state.status();
  return state.ok() ? *state : v1::PartialState();
}

// Normal values times 2^scale, with NaN, +-inf, zeros, subnormals and one huge outlier mixed in.
at::Tensor Awkward(int seed, int64_t n, int scale) {
  at::manual_seed(seed);
  at::Tensor x = at::mul(at::randn({n}), std::ldexp(1.0, scale));
  float* data = x.data_ptr<float>();
  data[seed % n] = std::numeric_limits<float>::quiet_NaN();
  data[(seed * 7) % n] = -std::numeric_limits<float>::infinity();
  data[(seed * 3) % n] = 0.0f;
  data[(seed * 5) % n] = -0.0f;
  data[(seed * 11) % n] = std::numeric_limits<float>::denorm_min() * (seed + 1);
  if (seed % 4 == 0) data[(seed * 13) % n] = 3.0e38f;
  return x;
}

TEST(PartialCountTest, HistogramsEqualTheKernelsBitForBit) {
  for (int seed = 0; seed < 24; ++seed) {
    const at::Tensor x = Awkward(seed, 257 + 31 * seed, seed % 9 * 10 - 40);
    for (const at::ScalarType dtype : {at::kFloat, at::kHalf, at::kBFloat16, at::kDouble}) {
      for (const bool skip_zeros : {false, true}) {
        const PartialTarget target{.histogram = true,
                                   .num_bins = seed % 3 == 0 ? 2048 : 1 + seed * 5,
                                   .skip_zeros = skip_zeros};
        const at::Tensor typed = x.to(dtype);
        SCOPED_TRACE(::testing::Message()
                     << "seed " << seed << " dtype " << dtype << " skip " << skip_zeros);
        EXPECT_EQ(CountPartialWithAten(typed, target).SerializeAsString(),
                  Kernels(typed, target).SerializeAsString());
      }
    }
  }
}

TEST(PartialCountTest, EdgeTensorsEqualTheKernels) {
  const float sub = std::numeric_limits<float>::denorm_min();
  const std::vector<at::Tensor> tensors = {
      at::zeros({5}),
      at::full({3}, std::numeric_limits<float>::quiet_NaN()),
      at::full({4}, sub),
      at::full({2}, std::numeric_limits<float>::max()),
      at::cat({at::full({3}, 1.0f), at::full({2}, 2.0f), at::full({1}, 4.0f)}),  // bin edges
      at::rand({2, 3, 4}),
  };
  for (const at::Tensor& x : tensors) {
    for (const int64_t num_bins : {1, 2, 16, 2048}) {
      const PartialTarget target{.histogram = true, .num_bins = num_bins};
      EXPECT_EQ(CountPartialWithAten(x, target).SerializeAsString(),
                Kernels(x, target).SerializeAsString())
          << x << " num_bins " << num_bins;
    }
  }
}

TEST(PartialCountTest, MaxPerTensorAndPerChannelEqualTheKernels) {
  for (int seed = 0; seed < 8; ++seed) {
    const at::Tensor x = Awkward(seed, 120, seed - 4).reshape({4, 5, 6});
    for (const std::optional<int32_t> axis :
         {std::optional<int32_t>(), std::optional<int32_t>(0), std::optional<int32_t>(1),
          std::optional<int32_t>(-1)}) {
      const PartialTarget target{.histogram = false, .axis = axis};
      EXPECT_EQ(CountPartialWithAten(x, target).SerializeAsString(),
                Kernels(x, target).SerializeAsString())
          << "seed " << seed << " axis " << axis.value_or(99);
    }
  }
}

}  // namespace
}  // namespace qcal::quant
