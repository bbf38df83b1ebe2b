// Rounding float32 to FP8 E4M3FN (quant_format.h), shared by the CPU kernels and their CUDA
// twins (the functions are __host__ __device__ under nvcc), so both round the same bits.
//
//   float q = qcal::kernels::RoundToFp8E4M3(x / (amax / qcal::kernels::kFp8E4M3Max));
//
// Rules (OCP 8-bit Floating Point Specification (OFP8) rev 1.0, E4M3; ONNX Cast and
// QuantizeLinear to FLOAT8E4M3FN with saturate=1, which TensorRT's FP8 Q/DQ also does):
//   - round to nearest, ties to even (the even 3-bit mantissa), exact for every float32 input:
//     the result is the E4M3FN value nearest x, computed on the bits (no rounding mode, no
//     FMA, no flush of subnormals can change it);
//   - saturate: |x| > 448, infinities included, gives +-448 (ONNX's saturate=1; OCP's
//     saturating conversion). ModelOpt's fp8_eager clamps to +-448 before its cast, the same;
//   - subnormals: multiples of 2^-9 below 2^-6; |x| <= 2^-10 gives +-0 (2^-10 is the tie
//     between 0 and 2^-9, and 0 is even);
//   - NaN stays NaN (the same float NaN is returned); -0 and negative values rounding to zero
//     give -0.
#ifndef QCAL_KERNELS_FP8_E4M3_H_
#define QCAL_KERNELS_FP8_E4M3_H_

#include <cstdint>
#include <cstring>

#include "kernels/quant_format.h"

#if defined(__CUDACC__)
#define QCAL_FP8_HOST_DEVICE __host__ __device__
#else
#define QCAL_FP8_HOST_DEVICE
#endif

namespace qcal::kernels {
namespace fp8_internal {

QCAL_FP8_HOST_DEVICE inline uint32_t Bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
#endif
}

QCAL_FP8_HOST_DEVICE inline float FromBits(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
#endif
}

inline constexpr uint32_t kAbsMask = 0x7fffffffu;
inline constexpr uint32_t kInfBits = 0x7f800000u;
inline constexpr uint32_t kMaxBits = 0x43e00000u;            // 448 = 1.75 * 2^8
inline constexpr uint32_t kMinNormalBits = 0x3c800000u;      // 2^-6
inline constexpr uint32_t kHalfSubnormalBits = 0x3a800000u;  // 2^-10

// |x| (as bits, 2^-10 < |x| < 2^-6) rounded half to even to a multiple of 2^-9, as a float.
QCAL_FP8_HOST_DEVICE inline float RoundSubnormal(uint32_t a) {
  const uint32_t exponent = a >> 23;  // 117..120
  const uint32_t mantissa = (a & 0x7fffffu) | 0x800000u;
  // |x| = mantissa * 2^(exponent - 150) = (mantissa >> shift) units of 2^-9 plus a remainder.
  const uint32_t shift = 141u - exponent;  // 21..24
  const uint32_t half = 1u << (shift - 1);
  const uint32_t units = (mantissa + half - 1u + ((mantissa >> shift) & 1u)) >> shift;
  return static_cast<float>(units) * 0x1p-9f;  // units <= 8: exact
}

}  // namespace fp8_internal

// x rounded to the nearest E4M3FN value, returned as float32 (rules above).
QCAL_FP8_HOST_DEVICE inline float RoundToFp8E4M3(float x) {
  using namespace fp8_internal;
  const uint32_t u = Bits(x);
  const uint32_t sign = u & ~kAbsMask;
  uint32_t a = u & kAbsMask;
  if (a > kInfBits) return x;  // NaN
  if (a >= kMaxBits) return FromBits(sign | kMaxBits);
  if (a >= kMinNormalBits) {
    // Keep 3 of float32's 23 mantissa bits, half to even; a carry moves into the exponent,
    // and nothing below 448 rounds above it (464 would be the tie with 480).
    a = (a + 0x7ffffu + ((a >> 20) & 1u)) & ~0xfffffu;
    return FromBits(sign | a);
  }
  if (a <= kHalfSubnormalBits) return FromBits(sign);
  return FromBits(sign | Bits(RoundSubnormal(a)));
}

// The E4M3FN byte of RoundToFp8E4M3(x): sign bit 7, exponent bits 6..3 (bias 7), mantissa
// bits 2..0; NaN gives 0x7f (or 0xff for a NaN with the sign bit set).
QCAL_FP8_HOST_DEVICE inline uint8_t Fp8E4M3Byte(float x) {
  using namespace fp8_internal;
  const float r = RoundToFp8E4M3(x);
  const uint32_t u = Bits(r);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t a = u & kAbsMask;
  if (a > kInfBits) return static_cast<uint8_t>(sign | 0x7fu);
  if (a < kMinNormalBits) {  // 0 or a subnormal: units of 2^-9
    return static_cast<uint8_t>(sign | static_cast<uint32_t>(FromBits(a) * 0x1p9f));
  }
  const uint32_t exponent = (a >> 23) - 127u + 7u;  // 1..15
  const uint32_t mantissa = (a >> 20) & 7u;
  return static_cast<uint8_t>(sign | (exponent << 3) | mantissa);
}

// The value of an E4M3FN byte (0x7f and 0xff are NaN; there are no infinities).
QCAL_FP8_HOST_DEVICE inline float Fp8E4M3Value(uint8_t byte) {
  using namespace fp8_internal;
  const uint32_t sign = static_cast<uint32_t>(byte & 0x80u) << 24;
  const uint32_t exponent = (byte >> 3) & 15u;
  const uint32_t mantissa = byte & 7u;
  if (exponent == 15u && mantissa == 7u) return FromBits(sign | 0x7fc00000u);
  if (exponent == 0u) {
    return FromBits(sign | Bits(static_cast<float>(mantissa) * 0x1p-9f));
  }
  return FromBits(sign | ((exponent + 127u - 7u) << 23) | (mantissa << 20));
}

}  // namespace qcal::kernels

#undef QCAL_FP8_HOST_DEVICE

#endif  // QCAL_KERNELS_FP8_E4M3_H_
