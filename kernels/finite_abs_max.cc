#include "kernels/finite_abs_max.h"

#include <algorithm>
#include <bit>
#include <vector>

#include "kernels/parallel.h"
#include "kernels/simd.h"

namespace qcal::kernels {
namespace {

constexpr uint32_t kAbsMask = 0x7fffffffu;
constexpr uint32_t kInfBits = 0x7f800000u;
// Pieces short enough that a uint32 non-finite count cannot wrap.
constexpr int64_t kPiece = int64_t{1} << 30;

struct BitsMax {
  uint32_t max_bits = 0;
  uint32_t nonfinite = 0;
};

QCAL_VECTOR_CLONES BitsMax AbsMaxBits(const float* x, int64_t count) {
  uint32_t max_bits = 0;
  uint32_t nonfinite = 0;
  for (int64_t i = 0; i < count; ++i) {
    // Masks rather than selects: this form is what GCC vectorises.
    const uint32_t u = std::bit_cast<uint32_t>(x[i]) & kAbsMask;
    const uint32_t finite_bits = u & (0u - static_cast<uint32_t>(u < kInfBits));
    max_bits = max_bits > finite_bits ? max_bits : finite_bits;
    nonfinite += static_cast<uint32_t>(u >= kInfBits);
  }
  return {max_bits, nonfinite};
}

}  // namespace

FiniteAbsMaxResult FiniteAbsMaxSerial(const float* x, int64_t count) {
  uint32_t max_bits = 0;
  int64_t nonfinite = 0;
  for (int64_t begin = 0; begin < count; begin += kPiece) {
    const BitsMax part = AbsMaxBits(x + begin, std::min(kPiece, count - begin));
    max_bits = std::max(max_bits, part.max_bits);
    nonfinite += part.nonfinite;
  }
  return {std::bit_cast<float>(max_bits), nonfinite};
}

FiniteAbsMaxResult FiniteAbsMax(std::span<const float> x) {
  const int64_t n = static_cast<int64_t>(x.size());
  const int chunks = BalancedChunksFor(n);
  std::vector<FiniteAbsMaxResult> partial(chunks);
  ParallelFor(n, chunks, [&](int chunk, int64_t begin, int64_t end) {
    partial[chunk] = FiniteAbsMaxSerial(x.data() + begin, end - begin);
  });
  FiniteAbsMaxResult result;
  for (const FiniteAbsMaxResult& p : partial) {
    result.abs_max = std::max(result.abs_max, p.abs_max);
    result.nonfinite += p.nonfinite;
  }
  return result;
}

}  // namespace qcal::kernels
