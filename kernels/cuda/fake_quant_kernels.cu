// tensor_quant / fake_tensor_quant's element loop on the device, bit for bit as
// kernels/fake_quant.cc: q = clamp(rint(x * round_scale)) in float32 (rint rounds half to even,
// as std::nearbyint in the default rounding mode), then q / scale; comparisons written so that
// NaN passes through, as on the CPU. FP8 E4M3 (LaunchQuantizeFp8): q = RoundToFp8E4M3(x / divisor)
// with kernels/fp8_e4m3.h's rounding (the CPU's own function), then q * step.
#include "kernels/cuda/internal/device_values.cuh"
#include "kernels/cuda/internal/grid.cuh"
#include "kernels/cuda/internal/launch.h"
#include "kernels/fp8_e4m3.h"

namespace qcal::kernels::cuda::internal {
namespace {

// kFp8: round_scale holds the divisors amax / 448 (inf for a zero amax) and scale the steps.
template <DType D, bool kFp8>
__global__ void __launch_bounds__(kThreads)
    QuantizeKernel(const void* x, int64_t total, QuantLayout layout, const float* round_scale,
                   const float* scale, float lo, float hi, bool fake, float* out) {
  const int64_t stride = GridThreads();
  for (int64_t o = GridThread(); o < total; o += stride) {
    int64_t xi = o;
    int64_t ai = 0;
    if (!layout.x_dense || !layout.amax_scalar) {
      int64_t rest = o;
      int64_t x_index = 0;
      int64_t a_index = 0;
      for (int d = layout.rank - 1; d >= 0; --d) {
        const int64_t size = layout.out_shape[d];
        const int64_t quotient = rest / size;
        const int64_t digit = rest - quotient * size;
        x_index += digit * layout.x_stride[d];
        a_index += digit * layout.amax_stride[d];
        rest = quotient;
      }
      if (!layout.x_dense) xi = x_index;
      if (!layout.amax_scalar) ai = a_index;
    }
    const float v = Elements<D>::Load(x, xi);
    if constexpr (kFp8) {
      const float q8 = RoundToFp8E4M3(__fdiv_rn(v, round_scale[ai]));
      out[o] = fake ? __fmul_rn(q8, scale[ai]) : q8;
      continue;
    }
    float q = rintf(__fmul_rn(v, round_scale[ai]));
    q = q < lo ? lo : q;  // NaN passes both comparisons unchanged
    q = q > hi ? hi : q;
    out[o] = fake ? __fdiv_rn(q, scale[ai]) : q;
  }
}

template <DType D, bool kFp8>
cudaError_t QuantizeOf(const void* x, int64_t total, const QuantLayout& layout,
                       const float* round_scale, const float* scale, float lo, float hi, bool fake,
                       float* out, const Launch& launch) {
  const int blocks = GridFor(total, int64_t{kThreads} * 4, launch.max_blocks);
  QuantizeKernel<D, kFp8><<<blocks, kThreads, 0, launch.stream>>>(x, total, layout, round_scale,
                                                                  scale, lo, hi, fake, out);
  return cudaGetLastError();
}

template <bool kFp8>
cudaError_t QuantizeDispatch(const void* x, DType dtype, int64_t total, const QuantLayout& layout,
                             const float* round_scale, const float* scale, float lo, float hi,
                             bool fake, float* out, const Launch& launch) {
  if (total <= 0) return cudaSuccess;
  switch (dtype) {
    case DType::kFloat32:
      return QuantizeOf<DType::kFloat32, kFp8>(x, total, layout, round_scale, scale, lo, hi, fake,
                                               out, launch);
    case DType::kFloat16:
      return QuantizeOf<DType::kFloat16, kFp8>(x, total, layout, round_scale, scale, lo, hi, fake,
                                               out, launch);
    case DType::kBFloat16:
      return QuantizeOf<DType::kBFloat16, kFp8>(x, total, layout, round_scale, scale, lo, hi, fake,
                                                out, launch);
    case DType::kFloat64:
      return QuantizeOf<DType::kFloat64, kFp8>(x, total, layout, round_scale, scale, lo, hi, fake,
                                               out, launch);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t LaunchQuantize(const void* x, DType dtype, int64_t total, const QuantLayout& layout,
                           const float* round_scale, const float* scale, float lo, float hi,
                           bool fake, float* out, const Launch& launch) {
  return QuantizeDispatch<false>(x, dtype, total, layout, round_scale, scale, lo, hi, fake, out,
                                 launch);
}

cudaError_t LaunchQuantizeFp8(const void* x, DType dtype, int64_t total, const QuantLayout& layout,
                              const float* divisor, const float* step, bool fake, float* out,
                              const Launch& launch) {
  return QuantizeDispatch<true>(x, dtype, total, layout, divisor, step, 0.0f, 0.0f, fake, out,
                                launch);
}

}  // namespace qcal::kernels::cuda::internal
