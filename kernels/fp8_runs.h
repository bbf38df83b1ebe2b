// Runs of a monotonic E4M3 code over bins, shared by the FP8 searches (fp8_search.h): where a
// run of bins that round to one E4M3 value ends, found by galloping from a guess and bisecting,
// each step checked with the code itself, so a guess only changes the cost, never the answer.
#ifndef QCAL_KERNELS_FP8_RUNS_H_
#define QCAL_KERNELS_FP8_RUNS_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/fp8_e4m3.h"

namespace qcal::kernels::internal {

// The midpoint between E4M3 value q >= 0 and the next larger one (inf for 448 and NaN): values
// above it no longer round to q.
inline double Fp8UpperMidpoint(float q) {
  if (!(q < kFp8E4M3Max)) return INFINITY;
  const uint8_t byte = Fp8E4M3Byte(q);
  return (static_cast<double>(q) + static_cast<double>(Fp8E4M3Value(byte + 1))) / 2.0;
}

// The first k in (begin, n] with k == n or code(k) != code(begin) = q, for code non-decreasing
// over [begin, n); `guess` (any value) is where it probably is.
template <typename Code>
int64_t Fp8RunEnd(int64_t begin, int64_t n, float q, double guess, const Code& code) {
  auto differs = [&](int64_t k) { return k >= n || code(k) != q; };
  int64_t g = begin + 1;
  if (std::isfinite(guess)) {
    g = static_cast<int64_t>(
        std::clamp(guess, static_cast<double>(begin + 1), static_cast<double>(n)));
  } else if (guess > 0) {
    g = n;
  }
  // Bracket: code(lo - 1) == q and differs(hi).
  int64_t lo = 0;
  int64_t hi = 0;
  if (differs(g)) {
    hi = g;
    int64_t step = 1;
    int64_t probe = g - 1;
    while (probe > begin && differs(probe)) {
      hi = probe;
      probe = std::max(begin, probe - step);
      step *= 2;
    }
    lo = probe + 1;
  } else {
    lo = g + 1;
    int64_t step = 1;
    hi = std::min(n, g + step);
    while (!differs(hi)) {
      lo = hi + 1;
      step *= 2;
      hi = std::min(n, hi + step);
    }
  }
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (differs(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

}  // namespace qcal::kernels::internal

#endif  // QCAL_KERNELS_FP8_RUNS_H_
