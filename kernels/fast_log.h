// Natural logarithm of four doubles at once, without branches or calls (the entropy search
// takes one per quantization group per candidate). GCC vector extensions fix the lane layout, so
// every instruction set computes the same bits. For finite, normal x > 0; accurate to a few ulp,
// which the KL search needs (its sums cancel to about 1e-3 of their size).
#ifndef QCAL_KERNELS_FAST_LOG_H_
#define QCAL_KERNELS_FAST_LOG_H_

#include <cstdint>

namespace qcal::kernels {

typedef double Double4 __attribute__((vector_size(32)));
typedef uint64_t Uint4 __attribute__((vector_size(32)));

// Replaces each lane of x by its natural log. (In place: a 32-byte vector passed or returned by
// value would change the calling convention between the SSE2 and AVX2 builds.)
[[gnu::always_inline]] inline void FastLogInPlace(Double4& x) {
  constexpr uint64_t kMantissaMask = 0x000fffffffffffffull;
  constexpr uint64_t kOneBits = 0x3ff0000000000000ull;
  constexpr double kSqrt2 = 1.4142135623730951;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // ln 2 = kLn2Hi + kLn2Lo
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  // 2^52 + n as a double, minus 2^52, converts an integer n < 2^52 exactly.
  constexpr uint64_t kTwo52Bits = 0x4330000000000000ull;
  constexpr double kTwo52 = 4503599627370496.0;

  // Casts between vector types of one size reinterpret the bits (GCC vector extensions).
  const Uint4 bits = (Uint4)x;
  Double4 m = (Double4)((bits & kMantissaMask) | kOneBits);  // [1, 2)
  // Keep m in [sqrt(1/2), sqrt(2)) so that |s| <= 0.1716 below.
  const auto high = m > kSqrt2;  // lanes of all ones or zero
  m = high ? m * 0.5 : m;
  const Uint4 biased = (bits >> 52) - (Uint4)high;
  const Double4 e = ((Double4)(biased | kTwo52Bits) - kTwo52) - 1023.0;
  // ln m = 2 atanh(s) = 2s (1 + z/3 + z^2/5 + ...), s = (m - 1) / (m + 1), z = s^2 <= 0.0295:
  // ten terms bring the truncation below 2^-55. The polynomial is evaluated by Estrin's scheme
  // (pairs, then powers z^2, z^4, z^8): a dependency chain of 7 operations instead of Horner's
  // 18, which is what limits a loop of logs.
  const Double4 f = m - 1.0;
  const Double4 s = f / (2.0 + f);
  const Double4 z = s * s;
  const Double4 z2 = z * z;
  const Double4 z4 = z2 * z2;
  const Double4 z8 = z4 * z4;
  const Double4 p01 = (1.0 / 5.0) * z + 1.0 / 3.0;
  const Double4 p23 = (1.0 / 9.0) * z + 1.0 / 7.0;
  const Double4 p45 = (1.0 / 13.0) * z + 1.0 / 11.0;
  const Double4 p67 = (1.0 / 17.0) * z + 1.0 / 15.0;
  const Double4 p89 = (1.0 / 21.0) * z + 1.0 / 19.0;
  const Double4 p03 = p23 * z2 + p01;
  const Double4 p47 = p67 * z2 + p45;
  const Double4 p = (p47 * z4 + p03) + p89 * z8;
  const Double4 two_s = 2.0 * s;
  const Double4 log_m = two_s + two_s * (z * p);
  x = e * kLn2Hi + (log_m + e * kLn2Lo);
}

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_FAST_LOG_H_
