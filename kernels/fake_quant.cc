#include "kernels/fake_quant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/fp8_e4m3.h"
#include "kernels/quant_bound.h"
#include "kernels/tensor_shape.h"

namespace qcal::kernels {
namespace {

absl::Status CheckView(const TensorView& t, const char* name) {
  return CheckShape(static_cast<int64_t>(t.data.size()), t.shape, name);
}

// Element strides of `shape` seen through the broadcast `out` shape (0 along broadcast axes).
std::vector<int64_t> BroadcastStrides(std::span<const int64_t> shape,
                                      std::span<const int64_t> out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const size_t d = shape.size() - 1 - i;
    const size_t o = out.size() - 1 - i;
    strides[o] = shape[d] == 1 ? 0 : stride;
    stride *= shape[d];
  }
  return strides;
}

// Calls fn(out_index, x_index, amax_index) for every element of the broadcast shape, in order.
template <typename Fn>
void ForEachBroadcast(std::span<const int64_t> out, const std::vector<int64_t>& x_strides,
                      const std::vector<int64_t>& a_strides, Fn fn) {
  int64_t total = 1;
  for (const int64_t d : out) total *= d;
  if (total == 0) return;
  if (out.empty()) {
    fn(0, 0, 0);
    return;
  }
  const size_t rank = out.size();
  std::vector<int64_t> digit(rank, 0);
  const int64_t inner = out[rank - 1];
  int64_t xi = 0;
  int64_t ai = 0;
  for (int64_t o = 0; o < total; o += inner) {
    for (int64_t k = 0; k < inner; ++k) {
      fn(o + k, xi + k * x_strides[rank - 1], ai + k * a_strides[rank - 1]);
    }
    for (size_t d = rank - 1; d-- > 0;) {
      xi += x_strides[d];
      ai += a_strides[d];
      if (++digit[d] < out[d]) break;
      xi -= x_strides[d] * out[d];
      ai -= a_strides[d] * out[d];
      digit[d] = 0;
    }
  }
}

struct Grid {
  float bound;
  float lo;
};

absl::StatusOr<Grid> CheckInputs(const TensorView& x, const TensorView& amax,
                                 const QuantParams& params) {
  const bool fp8 = params.format == QuantFormat::kFp8E4M3;
  absl::StatusOr<float> bound =
      fp8 ? absl::StatusOr<float>(kFp8E4M3Max) : QuantBound(params.num_bits, params.is_unsigned);
  if (!bound.ok()) return bound.status();
  if (absl::Status s = CheckView(x, "x"); !s.ok()) return s;
  if (absl::Status s = CheckView(amax, "amax"); !s.ok()) return s;
  if (amax.data.empty()) return absl::InvalidArgumentError("amax is empty");
  if (params.is_unsigned && !fp8) {
    // NaN is not negative, and -0.0 is not either.
    if (std::any_of(x.data.begin(), x.data.end(), [](float v) { return v < 0.0f; })) {
      return absl::InvalidArgumentError("negative values in x for unsigned quantization");
    }
  }
  if (std::any_of(amax.data.begin(), amax.data.end(), [](float a) { return a < 0.0f; })) {
    return absl::InvalidArgumentError("negative values in amax");
  }
  const float lo = params.is_unsigned ? 0.0f : params.narrow_range ? -*bound : -*bound - 1.0f;
  return Grid{*bound, lo};
}

// The FP8 branch of Quantize (fake_quant.h): q = E4M3(x / step), fake = q * step with
// step = amax / 448 in float32, as ONNX's QuantizeLinear / DequantizeLinear compute with
// y_scale = step. Where amax <= 2^-24, x / inf rounds as the int path's x * 0 does (0 with x's
// sign, NaN for an infinite or NaN x) and step is 1.
void QuantizeFp8(const TensorView& x, const TensorView& amax, std::span<const int64_t> out_shape,
                 bool fake, QuantizedTensor& result) {
  std::vector<float> divisor(amax.data.size());
  std::vector<float> step(amax.data.size());
  for (size_t k = 0; k < amax.data.size(); ++k) {
    const bool zero = amax.data[k] <= kFakeQuantZeroAmax;
    const float s = amax.data[k] / kFp8E4M3Max;
    divisor[k] = zero ? std::numeric_limits<float>::infinity() : s;
    step[k] = zero ? 1.0f : s;
    result.scale.data[k] = zero ? 1.0f : kFp8E4M3Max / amax.data[k];
  }
  int64_t total = 1;
  for (const int64_t d : out_shape) total *= d;
  result.quantized.shape.assign(out_shape.begin(), out_shape.end());
  result.quantized.data.resize(static_cast<size_t>(total));
  float* out = result.quantized.data.data();
  ForEachBroadcast(out_shape, BroadcastStrides(x.shape, out_shape),
                   BroadcastStrides(amax.shape, out_shape), [&](int64_t o, int64_t xi, int64_t ai) {
                     const float q = RoundToFp8E4M3(x.data[xi] / divisor[ai]);
                     out[o] = fake ? q * step[ai] : q;
                   });
}

// The quantization of x (quantized values, or fake-quantized when `fake`).
absl::StatusOr<QuantizedTensor> Quantize(const TensorView& x, const TensorView& amax,
                                         const QuantParams& params, bool fake) {
  absl::StatusOr<Grid> grid = CheckInputs(x, amax, params);
  if (!grid.ok()) return grid.status();
  absl::StatusOr<std::vector<int64_t>> out_shape = BroadcastShape(x.shape, amax.shape);
  if (!out_shape.ok()) return out_shape.status();

  // Per amax element: the scale used for rounding (0 for amax <= 2^-24) and the one reported
  // and divided by (1 there).
  std::vector<float> round_scale(amax.data.size());
  QuantizedTensor result;
  result.scale.shape.assign(amax.shape.begin(), amax.shape.end());
  result.scale.data.resize(amax.data.size());
  if (params.format == QuantFormat::kFp8E4M3) {
    QuantizeFp8(x, amax, *out_shape, fake, result);
    return result;
  }
  for (size_t k = 0; k < amax.data.size(); ++k) {
    const float scale = grid->bound / amax.data[k];
    const bool zero = amax.data[k] <= kFakeQuantZeroAmax;
    round_scale[k] = zero ? 0.0f : scale;
    result.scale.data[k] = zero ? 1.0f : scale;
  }

  int64_t total = 1;
  for (const int64_t d : *out_shape) total *= d;
  result.quantized.shape = *out_shape;
  result.quantized.data.resize(static_cast<size_t>(total));
  const float lo = grid->lo;
  const float hi = grid->bound;
  float* out = result.quantized.data.data();
  const float* scale_out = result.scale.data.data();
  ForEachBroadcast(*out_shape, BroadcastStrides(x.shape, *out_shape),
                   BroadcastStrides(amax.shape, *out_shape),
                   [&](int64_t o, int64_t xi, int64_t ai) {
                     float q = std::nearbyint(x.data[xi] * round_scale[ai]);
                     q = q < lo ? lo : q;  // NaN passes both comparisons unchanged
                     q = q > hi ? hi : q;
                     out[o] = fake ? q / scale_out[ai] : q;
                   });
  return result;
}

}  // namespace

absl::StatusOr<QuantizedTensor> TensorQuant(TensorView x, TensorView amax,
                                            const QuantParams& params) {
  return Quantize(x, amax, params, /*fake=*/false);
}

absl::StatusOr<Tensor> FakeTensorQuant(TensorView x, TensorView amax, const QuantParams& params) {
  absl::StatusOr<QuantizedTensor> q = Quantize(x, amax, params, /*fake=*/true);
  if (!q.ok()) return q.status();
  return std::move(q->quantized);
}

absl::StatusOr<Tensor> StraightThroughGrad(TensorView x, TensorView amax, TensorView grad_output) {
  if (absl::Status s = CheckView(x, "x"); !s.ok()) return s;
  if (absl::Status s = CheckView(amax, "amax"); !s.ok()) return s;
  if (absl::Status s = CheckView(grad_output, "grad_output"); !s.ok()) return s;
  if (amax.data.empty()) return absl::InvalidArgumentError("amax is empty");
  absl::StatusOr<std::vector<int64_t>> out_shape = BroadcastShape(x.shape, amax.shape);
  if (!out_shape.ok()) return out_shape.status();
  if (!std::equal(out_shape->begin(), out_shape->end(), x.shape.begin(), x.shape.end()) ||
      !std::equal(x.shape.begin(), x.shape.end(), grad_output.shape.begin(),
                  grad_output.shape.end())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "straight-through gradient needs x, grad_output and the broadcast of amax to share one "
        "shape; got x ",
        ShapeString(x.shape), ", amax ", ShapeString(amax.shape), ", grad_output ",
        ShapeString(grad_output.shape)));
  }
  Tensor grad{std::vector<float>(x.data.size()),
              std::vector<int64_t>(x.shape.begin(), x.shape.end())};
  ForEachBroadcast(
      *out_shape, BroadcastStrides(x.shape, *out_shape), BroadcastStrides(amax.shape, *out_shape),
      [&](int64_t o, int64_t xi, int64_t ai) {
        grad.data[o] = std::fabs(x.data[xi]) <= amax.data[ai] ? grad_output.data[o] : 0.0f;
      });
  return grad;
}

}  // namespace qcal::kernels
