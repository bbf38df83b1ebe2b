#include "kernels/bin_indices.h"

#include <bit>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qcal::kernels {
namespace {

constexpr uint32_t kAbsMask = 0x7fffffffu;
constexpr uint32_t kInfBits = 0x7f800000u;

// One value, as both implementations compute it.
inline uint32_t Slot(float x, int lane, const BinIndexLayout& layout, uint32_t& max_bits,
                     uint32_t& finite_count) {
  const uint32_t u = std::bit_cast<uint32_t>(x) & kAbsMask;
  const uint32_t is_finite = static_cast<uint32_t>(u < kInfBits);
  const uint32_t finite_bits = u & (0u - is_finite);
  max_bits = max_bits > finite_bits ? max_bits : finite_bits;
  finite_count += is_finite;
  // The reference's two roundings: the quotient, then the product with the bin count.
  const float quotient = std::bit_cast<float>(finite_bits) / layout.range_max;
  float t = quotient * layout.bins_f;
  t = t < layout.bins_f ? t : layout.bins_f;  // keeps the conversion defined above range_max
  uint32_t bin = static_cast<uint32_t>(static_cast<int32_t>(t));
  bin = bin < layout.last_bin ? bin : layout.last_bin;
  // Masks instead of branches and selects: this form vectorises.
  const uint32_t keep = 0u - static_cast<uint32_t>(finite_bits != 0);
  return ((bin + layout.kept_offset[lane]) & keep) | (layout.discard_slot[lane] & ~keep);
}

#if defined(__x86_64__)
bool CpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// Eight values per step. The conversion gives 0x80000000 for t >= 2^31 (and NaN), which the
// unsigned min sends to the last bin like any t >= bins_f; t is never negative. NaN and +-inf
// are discarded anyway. Same bits as Slot(): one division and one multiplication, each rounded
// to float32 (the build has no FMA contraction, and these intrinsics cannot contract).
__attribute__((target("avx2"))) void BinIndicesAvx2(const float* x, int count,
                                                    const BinIndexLayout& layout, uint32_t* slots,
                                                    BinIndexStats* stats) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(kAbsMask)));
  const __m256 inf = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(kInfBits)));
  const __m256 range_max = _mm256_set1_ps(layout.range_max);
  const __m256 bins_f = _mm256_set1_ps(layout.bins_f);
  const __m256i last_bin = _mm256_set1_epi32(static_cast<int>(layout.last_bin));
  const __m256i zero = _mm256_setzero_si256();
  const __m256i kept_offset =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(layout.kept_offset.data()));
  const __m256i discard_slot =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(layout.discard_slot.data()));
  __m256i max_bits = zero;
  __m256i finite_count = zero;  // subtracting a lane's all-ones mask adds 1
  int i = 0;
  for (; i + kBinLanes <= count; i += kBinLanes) {
    const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
    const __m256 finite = _mm256_cmp_ps(a, inf, _CMP_LT_OQ);  // false for NaN
    const __m256i finite_bits = _mm256_castps_si256(_mm256_and_ps(a, finite));
    max_bits = _mm256_max_epu32(max_bits, finite_bits);
    finite_count = _mm256_sub_epi32(finite_count, _mm256_castps_si256(finite));
    const __m256i keep = _mm256_cmpgt_epi32(finite_bits, zero);
    const __m256 t = _mm256_mul_ps(_mm256_div_ps(a, range_max), bins_f);
    const __m256i bin = _mm256_min_epu32(_mm256_cvttps_epi32(t), last_bin);
    const __m256i slot = _mm256_blendv_epi8(discard_slot, _mm256_add_epi32(bin, kept_offset), keep);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(slots + i), slot);
  }
  alignas(32) uint32_t lanes_max[kBinLanes];
  alignas(32) uint32_t lanes_finite[kBinLanes];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes_max), max_bits);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes_finite), finite_count);
  uint32_t max_all = stats->max_bits;
  uint32_t finite_all = stats->finite;
  for (int lane = 0; lane < kBinLanes; ++lane) {
    max_all = max_all > lanes_max[lane] ? max_all : lanes_max[lane];
    finite_all += lanes_finite[lane];
  }
  for (; i < count; ++i) slots[i] = Slot(x[i], i % kBinLanes, layout, max_all, finite_all);
  stats->max_bits = max_all;
  stats->finite = finite_all;
}
#endif

}  // namespace

BinIndexLayout BinIndexLayout::For(float range_max, int64_t num_bins, uint32_t stride, int copies) {
  BinIndexLayout layout;
  layout.range_max = range_max;
  layout.bins_f = static_cast<float>(num_bins);
  layout.last_bin = static_cast<uint32_t>(num_bins - 1);
  for (int lane = 0; lane < kBinLanes; ++lane) {
    const uint32_t copy_start = static_cast<uint32_t>(lane % copies) * stride;
    layout.kept_offset[lane] = copy_start;
    layout.discard_slot[lane] = copy_start + static_cast<uint32_t>(num_bins + lane);
  }
  return layout;
}

void ComputeBinIndicesPortable(const float* x, int count, const BinIndexLayout& layout,
                               uint32_t* slots, BinIndexStats* stats) {
  uint32_t max_bits = stats->max_bits;
  uint32_t finite = stats->finite;
  int i = 0;
  for (; i + kBinLanes <= count; i += kBinLanes) {
    for (int lane = 0; lane < kBinLanes; ++lane) {
      slots[i + lane] = Slot(x[i + lane], lane, layout, max_bits, finite);
    }
  }
  for (; i < count; ++i) slots[i] = Slot(x[i], i % kBinLanes, layout, max_bits, finite);
  stats->max_bits = max_bits;
  stats->finite = finite;
}

bool ComputeBinIndicesAvx2(const float* x, int count, const BinIndexLayout& layout, uint32_t* slots,
                           BinIndexStats* stats) {
#if defined(__x86_64__)
  if (!CpuHasAvx2()) return false;
  BinIndicesAvx2(x, count, layout, slots, stats);
  return true;
#else
  (void)x, (void)count, (void)layout, (void)slots, (void)stats;
  return false;
#endif
}

void ComputeBinIndices(const float* x, int count, const BinIndexLayout& layout, uint32_t* slots,
                       BinIndexStats* stats) {
  if (!ComputeBinIndicesAvx2(x, count, layout, slots, stats)) {
    ComputeBinIndicesPortable(x, count, layout, slots, stats);
  }
}

}  // namespace qcal::kernels
