// pytorch-quantization's tensor_quant / fake_tensor_quant forward, bit for bit in float32, and
// the straight-through-estimator backward of both.
//
//   const float amax = 2.5f;
//   const std::vector<int64_t> x_shape = {4, 16}, scalar = {};
//   auto fq = qcal::kernels::FakeTensorQuant({x, x_shape}, {{&amax, 1}, scalar}, {.num_bits = 8});
//
// Arithmetic: bound = 2^(num_bits-1+unsigned) - 1; scale = bound / amax; where amax <= 2^-24 the
// scale is 0 for rounding and reported as 1; q = clamp(round_half_even(x * scale), lo, bound)
// with lo = 0 (unsigned), -bound (narrow_range) or -bound - 1; the clamp keeps x when it equals
// a bound (so -0.0 survives); fake = q / scale. NaN propagates (NaN amax gives NaN outputs).
// amax broadcasts against x with numpy's rules: a scalar (shape []) per tensor, [C,1,1,1] for
// axis 0 of a 4-D tensor, [1,C,1,1] for axis 1, [1,C] for the last axis of a 2-D tensor; the
// output takes the broadcast shape.
//
// FP8 E4M3 (params.format = QuantFormat::kFp8E4M3; num_bits, is_unsigned and narrow_range are
// ignored, and negative x is allowed):
//   step = amax / 448 in float32; q = RoundToFp8E4M3(x / step) (fp8_e4m3.h: nearest E4M3FN
//   value, ties to even, saturating at +-448, NaN stays NaN, -0 kept); fake = q * step.
// This is ONNX's QuantizeLinear (saturate=1) then DequantizeLinear to FLOAT8E4M3FN with
// y_scale = amax / 448 as the operators define them (y = saturate(round(x / y_scale)), then
// y * y_scale), so ONNX Runtime's output on a Q/DQ pair exported from this amax is the oracle;
// TensorRT's FP8 scale is the same amax / 448. ModelOpt's fp8_eager
// (modelopt/torch/quantization/tensor_quant.py) multiplies by 448 / amax and by its inverse
// instead, which can differ in the last bit of x * scale and so, where that lands on a midpoint
// between E4M3 values, by one E4M3 step.
// amax <= 2^-24 is treated as the int path treats it: q = 0 with x's sign (NaN for an infinite
// or NaN x) and scale 1, so fake = q (ModelOpt would quantize with amax 1 there instead).
// A NaN amax gives NaN; an infinite amax gives q = 0 and fake NaN (0 * inf), as the int path's
// 0 / 0.
// scale reports 448 / amax (1 where amax <= 2^-24), the int path's bound / amax with bound =
// 448; fake is computed as quantized * (amax / 448), not quantized / scale.
#ifndef QCAL_KERNELS_FAKE_QUANT_H_
#define QCAL_KERNELS_FAKE_QUANT_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/quant_format.h"

namespace qcal::kernels {

// amax at or below this is treated as zero (the smallest float16 subnormal): the reference's
// epsilon = 1 / (1 << 24). Shared with the CUDA twin.
inline constexpr float kFakeQuantZeroAmax = 0x1p-24f;

// A float32 row-major tensor that someone else owns; shape [] is a scalar.
struct TensorView {
  std::span<const float> data;
  std::span<const int64_t> shape;
};

struct Tensor {
  std::vector<float> data;
  std::vector<int64_t> shape;
};

struct QuantParams {
  int num_bits = 8;
  bool is_unsigned = false;
  // The functions' own default (a QuantDescriptor's default is false).
  bool narrow_range = true;
  // kFp8E4M3: E4M3 with scale amax / 448 (above); num_bits, is_unsigned and narrow_range are
  // then ignored.
  QuantFormat format = QuantFormat::kInt;
};

struct QuantizedTensor {
  // Integer-valued floats on the quantization grid (NaN where x or amax is NaN); for FP8, E4M3
  // values in [-448, 448].
  Tensor quantized;
  // bound / amax (bound 448 for FP8), shaped like amax; 1 where amax <= 2^-24.
  Tensor scale;
};

// Errors: INVALID_ARGUMENT for num_bits outside QuantBound's range (int format only), a shape whose
// size does not match its data or that has a negative dimension, an empty amax, any amax < 0, amax
// that does not broadcast against x, or (unsigned int) any x < 0. An empty x gives an empty output.
absl::StatusOr<QuantizedTensor> TensorQuant(TensorView x, TensorView amax,
                                            const QuantParams& params);

// quantized / scale, same errors.
absl::StatusOr<Tensor> FakeTensorQuant(TensorView x, TensorView amax, const QuantParams& params);

// Gradient of either function with respect to x: grad_output where |x| <= amax, 0 elsewhere
// (and for NaN x); amax gets none. x must already have the broadcast shape and grad_output the
// same shape. Errors: INVALID_ARGUMENT for mismatched shapes or an empty amax.
absl::StatusOr<Tensor> StraightThroughGrad(TensorView x, TensorView amax, TensorView grad_output);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_FAKE_QUANT_H_
