// Device-side reading of batch elements as float32 (internal, nvcc only): the decoding of
// kernels/dtype.cc bit for bit, one element at a time or 16 bytes at a time.
#ifndef QCAL_KERNELS_CUDA_INTERNAL_DEVICE_VALUES_CUH_
#define QCAL_KERNELS_CUDA_INTERNAL_DEVICE_VALUES_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace qcal::kernels::cuda::internal {

inline constexpr unsigned int kAbsMask = 0x7fffffffu;
inline constexpr unsigned int kInfBits = 0x7f800000u;

// IEEE binary16 -> binary32, exactly as kernels/dtype.cc's HalfToFloat.
__device__ __forceinline__ float HalfBitsToFloat(unsigned int h) {
  const unsigned int sign = (h & 0x8000u) << 16;
  const unsigned int exponent = (h >> 10) & 0x1fu;
  const unsigned int mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) return __uint_as_float(sign | kInfBits | (mantissa << 13));
  if (exponent == 0u) {
    const float magnitude = __fmul_rn(static_cast<float>(mantissa), 0x1p-24f);  // exact
    return sign != 0u ? -magnitude : magnitude;
  }
  return __uint_as_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

__device__ __forceinline__ float BFloat16BitsToFloat(unsigned int b) {
  return __uint_as_float((b & 0xffffu) << 16);
}

// Elements<D>::kBytes is the element size; Load(base, i) reads element i; LoadVector(base, v, out)
// reads the kVector elements of 16-byte unit v (base must be 16-byte aligned).
template <DType D>
struct Elements;

template <>
struct Elements<DType::kFloat32> {
  static constexpr int kBytes = 4;
  static constexpr int kVector = 4;
  __device__ __forceinline__ static float Load(const void* base, int64_t i) {
    return __ldg(static_cast<const float*>(base) + i);
  }
  __device__ __forceinline__ static void LoadVector(const void* base, int64_t v,
                                                    float (&out)[kVector]) {
    const float4 q = __ldg(static_cast<const float4*>(base) + v);
    out[0] = q.x;
    out[1] = q.y;
    out[2] = q.z;
    out[3] = q.w;
  }
};

template <bool kHalf>
struct SixteenBitElements {
  static constexpr int kBytes = 2;
  static constexpr int kVector = 8;
  __device__ __forceinline__ static float Decode(unsigned int bits) {
    return kHalf ? HalfBitsToFloat(bits) : BFloat16BitsToFloat(bits);
  }
  __device__ __forceinline__ static float Load(const void* base, int64_t i) {
    return Decode(__ldg(static_cast<const unsigned short*>(base) + i));
  }
  __device__ __forceinline__ static void LoadVector(const void* base, int64_t v,
                                                    float (&out)[kVector]) {
    const uint4 q = __ldg(static_cast<const uint4*>(base) + v);
    const unsigned int words[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      // Little-endian: the lower half of each word is the earlier element.
      out[2 * k] = Decode(words[k] & 0xffffu);
      out[2 * k + 1] = Decode(words[k] >> 16);
    }
  }
};

template <>
struct Elements<DType::kFloat16> : SixteenBitElements<true> {};
template <>
struct Elements<DType::kBFloat16> : SixteenBitElements<false> {};

template <>
struct Elements<DType::kFloat64> {
  static constexpr int kBytes = 8;
  static constexpr int kVector = 2;
  // Round to nearest even; beyond float32's range +-inf, as the host's conversion.
  __device__ __forceinline__ static float Load(const void* base, int64_t i) {
    return __double2float_rn(__ldg(static_cast<const double*>(base) + i));
  }
  __device__ __forceinline__ static void LoadVector(const void* base, int64_t v,
                                                    float (&out)[kVector]) {
    const double2 q = __ldg(static_cast<const double2*>(base) + v);
    out[0] = __double2float_rn(q.x);
    out[1] = __double2float_rn(q.y);
  }
};

// |x| as bits with the sign cleared; >= kInfBits for NaN and +-inf.
__device__ __forceinline__ unsigned int AbsBits(float x) { return __float_as_uint(x) & kAbsMask; }

// Units of 16 bytes a kernel may read vectorised, given the data's alignment; the elements past
// units * kVector are read one by one.
template <DType D>
__host__ __device__ inline int64_t VectorUnits(const void* data, int64_t count) {
  return (reinterpret_cast<uintptr_t>(data) % 16 == 0) ? count / Elements<D>::kVector : 0;
}

}  // namespace qcal::kernels::cuda::internal

#endif  // QCAL_KERNELS_CUDA_INTERNAL_DEVICE_VALUES_CUH_
