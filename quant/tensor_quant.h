// pytorch-quantization's tensor_quant and fake_tensor_quant (tensor_quant.py): quantization of a
// tensor to the integer grid of `num_bits` bits with a given amax, as autograd functions whose
// backward is the straight-through estimator. Function and method names in quant/ follow the
// reference (and LibTorch's own snake_case API).
//
//   torch::manual_seed(12345);
//   at::Tensor x = torch::rand(10);
//   at::Tensor amax = x.abs().max();
//   at::Tensor fq = qcal::quant::fake_tensor_quant(x, amax);          // float32, like x
//   auto [q, scale] = qcal::quant::tensor_quant(x, amax);              // q in [-127, 127]
//   at::Tensor f8 = qcal::quant::fake_tensor_quant_fp8(x, amax);      // E4M3 grid * amax / 448
//
// Arithmetic (bit for bit the reference's, see ../shared/DESIGN.md "Numerics"): bound =
// 2^(num_bits - 1 + unsigned) - 1; scale = bound / amax; where amax <= 2^-24 the scale is 0 for
// rounding (those values quantize to 0) and reported as 1; q = clamp(round_half_even(x *
// scale), lo, bound) with lo = 0 (unsigned), -bound (narrow_range) or -bound - 1; fake = q /
// scale. NaN propagates. CPU float32 tensors run on kernels/fake_quant.h (the code the server
// runs); other dtypes and devices run the same arithmetic as torch ops (float16 and bfloat16 in
// float32, rounded once at the end, as the reference).
//
// Shapes: `amax` broadcasts against `inputs` with torch's rules: a 0-d tensor per tensor,
// [C, 1, 1, 1] for axis 0 of a 4-D tensor, [1, C, 1, 1] for axis 1, [1, C] for the last axis of
// a 2-D one. The outputs take the broadcast shape; scale takes amax's shape (dtype of inputs).
//
// Backward (both functions): the gradient with respect to inputs is grad_output where |x| <=
// amax and 0 elsewhere (NaN included), summed back to inputs' shape if amax broadcast it
// larger; amax, num_bits and the flags get none (the reference gives amax none either).
//
// Errors (c10, see errors.h): ValueError for num_bits outside [2, 16] signed or [1, 16]
// unsigned (the reference computes NaN or a degenerate grid for 0 and 1 signed), an empty amax,
// any amax < 0, an amax that does not broadcast against inputs, and (unsigned) any input < 0
// (the reference's TypeError); TypeError for a non-floating input. An empty input gives an
// empty output (the reference fails in min() on an empty unsigned input).
//
// FP8 E4M3 (tensor_quant_fp8 / fake_tensor_quant_fp8; pytorch-quantization's num_bits=(4, 3),
// ModelOpt's scaled_e4m3 in modelopt/torch/quantization/tensor_quant.py): kernels/fake_quant.h
// with QuantParams{.format = kFp8E4M3}, the code the server runs: step = amax / 448 in float32;
// q = RoundToFp8E4M3(x / step) (kernels/fp8_e4m3.h: nearest E4M3FN value, ties to even,
// saturating at +-448, subnormals down to 2^-9, |x / step| <= 2^-10 gives +-0, NaN stays NaN);
// fake = q * step, so |fake| <= amax and values beyond amax give +-amax. scale is 448 / amax
// (the int functions' bound / amax with bound 448), 1 where amax <= 2^-24 (q is then +-0). This
// is ONNX QuantizeLinear(saturate=1) + DequantizeLinear to FLOAT8E4M3FN with y_scale = amax /
// 448, what TensorRT runs on the exported Q/DQ pair; ModelOpt multiplies by 448 / amax instead,
// which can differ by one E4M3 step where x * scale lands on a midpoint. Every dtype and device
// is computed in float32 on the CPU (torch 1.13 has no float8 dtype) and returned in inputs'
// dtype and device (float64 inputs are rounded to float32 first). Backward: the same
// straight-through estimator as above (ModelOpt's ScaledE4M3Function: grad where |x| <= amax).
// Errors: TypeError for a non-floating input or amax; ValueError for an empty amax, any amax < 0
// or an amax that does not broadcast; negative inputs are allowed.
#ifndef QCAL_QUANT_TENSOR_QUANT_H_
#define QCAL_QUANT_TENSOR_QUANT_H_

#include <ATen/core/Tensor.h>

#include <tuple>

namespace qcal::quant {

// The quantized values (integer-valued, dtype of inputs) and the scale bound / amax.
std::tuple<at::Tensor, at::Tensor> tensor_quant(const at::Tensor& inputs, const at::Tensor& amax,
                                                int num_bits = 8, bool is_unsigned = false,
                                                bool narrow_range = true);

// q / scale: values on the grid, in the units of inputs.
at::Tensor fake_tensor_quant(const at::Tensor& inputs, const at::Tensor& amax, int num_bits = 8,
                             bool is_unsigned = false, bool narrow_range = true);

// FP8 E4M3 (above): the E4M3 values of x / (amax / 448), in [-448, 448], and the scale 448 / amax.
std::tuple<at::Tensor, at::Tensor> tensor_quant_fp8(const at::Tensor& inputs,
                                                    const at::Tensor& amax);

// FP8 E4M3 (above): q * amax / 448, in the units of inputs.
at::Tensor fake_tensor_quant_fp8(const at::Tensor& inputs, const at::Tensor& amax);

namespace internal {

struct QuantOutputs {
  at::Tensor quantized;
  at::Tensor scale;
  at::Tensor fake;  // quantized / scale, only when asked for
};

// The forward arithmetic without autograd, on kernels/ (CPU float32 only) or on torch ops (any
// floating dtype and device). Both give the same bits on CPU float32; the public functions pick
// the kernels there. Errors as above.
QuantOutputs QuantForwardKernels(const at::Tensor& inputs, const at::Tensor& amax, int num_bits,
                                 bool is_unsigned, bool narrow_range, bool fake);
QuantOutputs QuantForwardTorch(const at::Tensor& inputs, const at::Tensor& amax, int num_bits,
                               bool is_unsigned, bool narrow_range, bool fake);
// FP8 E4M3 on kernels/, any floating dtype and device (through CPU float32). Errors as above.
QuantOutputs QuantForwardFp8(const at::Tensor& inputs, const at::Tensor& amax, bool fake);

}  // namespace internal
}  // namespace qcal::quant

#endif  // QCAL_QUANT_TENSOR_QUANT_H_
