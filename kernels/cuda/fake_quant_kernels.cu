// tensor_quant / fake_tensor_quant's element loop on the device, bit for bit as
// kernels/fake_quant.cc: q = clamp(rint(x * round_scale)) in float32 (rint rounds half to even,
// as std::nearbyint in the default rounding mode), then q / scale; comparisons written so that
// NaN passes through, as on the CPU.
#include "kernels/cuda/internal/device_values.cuh"
#include "kernels/cuda/internal/grid.cuh"
#include "kernels/cuda/internal/launch.h"

namespace qcal::kernels::cuda::internal {
namespace {

template <DType D>
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
    float q = rintf(__fmul_rn(v, round_scale[ai]));
    q = q < lo ? lo : q;  // NaN passes both comparisons unchanged
    q = q > hi ? hi : q;
    out[o] = fake ? __fdiv_rn(q, scale[ai]) : q;
  }
}

template <DType D>
cudaError_t QuantizeOf(const void* x, int64_t total, const QuantLayout& layout,
                       const float* round_scale, const float* scale, float lo, float hi, bool fake,
                       float* out, const Launch& launch) {
  const int blocks = GridFor(total, int64_t{kThreads} * 4, launch.max_blocks);
  QuantizeKernel<D><<<blocks, kThreads, 0, launch.stream>>>(x, total, layout, round_scale, scale,
                                                            lo, hi, fake, out);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchQuantize(const void* x, DType dtype, int64_t total, const QuantLayout& layout,
                           const float* round_scale, const float* scale, float lo, float hi,
                           bool fake, float* out, const Launch& launch) {
  if (total <= 0) return cudaSuccess;
  switch (dtype) {
    case DType::kFloat32:
      return QuantizeOf<DType::kFloat32>(x, total, layout, round_scale, scale, lo, hi, fake, out,
                                         launch);
    case DType::kFloat16:
      return QuantizeOf<DType::kFloat16>(x, total, layout, round_scale, scale, lo, hi, fake, out,
                                         launch);
    case DType::kBFloat16:
      return QuantizeOf<DType::kBFloat16>(x, total, layout, round_scale, scale, lo, hi, fake, out,
                                          launch);
    case DType::kFloat64:
      return QuantizeOf<DType::kFloat64>(x, total, layout, round_scale, scale, lo, hi, fake, out,
                                         launch);
  }
  return cudaErrorInvalidValue;
}

}  // namespace qcal::kernels::cuda::internal
