// tensor_quant / fake_tensor_quant forward on the GPU: the CUDA twins of kernels/fake_quant.h
// (pytorch-quantization's), bit for bit in float32, with the same broadcasting and errors.
//
//   const float amax = 2.5f;
//   std::vector<float> out(x.size());
//   auto shape = qcal::kernels::cuda::FakeTensorQuant(*gpu, BatchRef::Float32(x), x_shape,
//                                                     {{&amax, 1}, {}}, {.num_bits = 8},
//                                                     out.data());
//
// x may be any dtype in any memory (batch_ref.h); it is decoded on the device. amax is a small
// float32 tensor on the host. `out` receives prod(broadcast shape) float32 values and may be
// device or host memory.
//
// FP8 E4M3 (params.format = kFp8E4M3): as kernels/fake_quant.h's FP8 rules, bit for bit with the
// CPU (both round with kernels/fp8_e4m3.h's RoundToFp8E4M3): q = E4M3(x / (amax / 448)),
// fake = q * (amax / 448), scale_out 448 / amax; num_bits, is_unsigned and narrow_range ignored.
#ifndef QCAL_KERNELS_CUDA_FAKE_QUANT_H_
#define QCAL_KERNELS_CUDA_FAKE_QUANT_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cuda/batch_ref.h"
#include "kernels/cuda/context.h"
#include "kernels/fake_quant.h"

namespace qcal::kernels::cuda {

// Broadcast shapes up to this rank run on the device.
inline constexpr int kMaxQuantRank = 16;

// Quantized values (integer-valued floats; E4M3 values for FP8) into `quantized_out` and bound /
// amax (1 where amax <= 2^-24, shaped like amax; 448 / amax for FP8) into `scale_out`; returns the
// broadcast shape. Errors: those of kernels::TensorQuant (num_bits, shapes, empty or negative amax,
// amax not broadcasting against x, a negative x for unsigned), those of CheckBatchRef,
// INVALID_ARGUMENT beyond kMaxQuantRank, RESOURCE_EXHAUSTED when device memory runs out, INTERNAL
// for a CUDA failure. Nothing is written on error.
absl::StatusOr<std::vector<int64_t>> TensorQuant(const Context& context, const BatchRef& x,
                                                 std::span<const int64_t> x_shape, TensorView amax,
                                                 const QuantParams& params, float* quantized_out,
                                                 std::vector<float>* scale_out);

// quantized / scale into `out`; returns the broadcast shape. Errors as TensorQuant.
absl::StatusOr<std::vector<int64_t>> FakeTensorQuant(const Context& context, const BatchRef& x,
                                                     std::span<const int64_t> x_shape,
                                                     TensorView amax, const QuantParams& params,
                                                     float* out);

}  // namespace qcal::kernels::cuda

#endif  // QCAL_KERNELS_CUDA_FAKE_QUANT_H_
