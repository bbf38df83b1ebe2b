// CountMergeable and its binning pass (mergeable_binning.h), in the style of
// histogram_binning.cc: slots a tile at a time (vectorised), then counted per thread in uint32
// and summed into uint64.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <mutex>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "kernels/count_tile.h"
#include "kernels/finite_abs_max.h"
#include "kernels/histogram.h"
#include "kernels/mergeable_binning.h"
#include "kernels/mergeable_histogram.h"
#include "kernels/parallel.h"

namespace qcal::kernels {
namespace {

constexpr uint32_t kAbsMask = 0x7fffffffu;
constexpr uint32_t kInfBits = 0x7f800000u;
constexpr int kLanes = 8;
constexpr int kTile = 1024;
// uint32 counts are flushed before they can wrap.
constexpr int64_t kFlushEvery = int64_t{1} << 31;
// Up to this many bins, lanes alternate between two copies of the counts, which breaks the
// store-to-load chains of runs of one bin (histogram_binning.cc says more); zeros and non-finite
// values are packed out before the scatter (ComputeSlots).
constexpr int64_t kMaxBinsForCopies = int64_t{1} << 14;
constexpr int kCopies = 2;

struct SlotLayout {
  MergeableScale scale;
  float clamp = 0.0f;  // keeps the float -> int32 conversion defined
  uint32_t last_bin = 0;
  std::array<uint32_t, kLanes> kept_offset{};
};

// The slots of the kept values of x[0..count) (finite and non-zero), packed at the front of
// `slots`; returns how many. Folds the max's bits and the finite count into *max_bits, *finite.
// Zeros and NaN/+-inf are only counted here, never scattered: ReLU'd activations are half
// zeros, and the scatter is the pass's cost.
int ComputeSlots(const float* x, int count, const SlotLayout& layout, uint32_t* slots,
                 uint32_t* max_bits_out, uint32_t* finite_out) {
  uint32_t max_bits = *max_bits_out;
  uint32_t finite = *finite_out;
  const float first = layout.scale.first;
  const float second = layout.scale.second;
  const float clamp = layout.clamp;
  const uint32_t last_bin = layout.last_bin;
  int kept_count = 0;
  for (int i = 0; i < count; ++i) {
    const int lane = i % kLanes;
    const uint32_t u = std::bit_cast<uint32_t>(x[i]) & kAbsMask;
    const uint32_t is_finite = static_cast<uint32_t>(u < kInfBits);
    const uint32_t finite_bits = u & (0u - is_finite);
    max_bits = max_bits > finite_bits ? max_bits : finite_bits;
    finite += is_finite;
    float t = (std::bit_cast<float>(finite_bits) * first) * second;
    t = t < clamp ? t : clamp;
    uint32_t bin = static_cast<uint32_t>(static_cast<int32_t>(t));
    bin = bin < last_bin ? bin : last_bin;
    // Written always, kept only when the value counts: no branch to mispredict.
    slots[kept_count] = bin + layout.kept_offset[lane];
    kept_count += static_cast<int>(finite_bits != 0);
  }
  *max_bits_out = max_bits;
  *finite_out = finite;
  return kept_count;
}

#if defined(__x86_64__)
// For each 8-bit mask of kept lanes, the lanes' indices in order (the rest 0): the permutation
// that packs the kept slots to the front (AVX2 has no compress instruction).
struct PackTable {
  alignas(32) uint32_t lanes[256][kLanes];
  constexpr PackTable() : lanes{} {
    for (int mask = 0; mask < 256; ++mask) {
      int n = 0;
      for (int lane = 0; lane < kLanes; ++lane) {
        if (mask & (1 << lane)) lanes[mask][n++] = static_cast<uint32_t>(lane);
      }
    }
  }
};
constexpr PackTable kPackTable;
// Eight values per step, the same packed slots and stats as ComputeSlots (two float32
// multiplications, never fused; the conversion of t < 2^30 is exact truncation).
__attribute__((target("avx2,popcnt"))) int ComputeSlotsAvx2(const float* x, int count,
                                                            const SlotLayout& layout,
                                                            uint32_t* slots, uint32_t* max_bits_out,
                                                            uint32_t* finite_out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(kAbsMask)));
  const __m256 inf = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(kInfBits)));
  const __m256 first = _mm256_set1_ps(layout.scale.first);
  const __m256 second = _mm256_set1_ps(layout.scale.second);
  const __m256 clamp = _mm256_set1_ps(layout.clamp);
  const __m256i last_bin = _mm256_set1_epi32(static_cast<int>(layout.last_bin));
  const __m256i zero = _mm256_setzero_si256();
  const __m256i kept_offset =
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(layout.kept_offset.data()));
  __m256i max_bits = zero;
  __m256i finite_count = zero;
  int kept_count = 0;
  int i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    const __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
    const __m256 finite = _mm256_cmp_ps(a, inf, _CMP_LT_OQ);
    const __m256 kept_value = _mm256_and_ps(a, finite);
    const __m256i finite_bits = _mm256_castps_si256(kept_value);
    max_bits = _mm256_max_epu32(max_bits, finite_bits);
    finite_count = _mm256_sub_epi32(finite_count, _mm256_castps_si256(finite));
    const __m256i keep = _mm256_cmpgt_epi32(finite_bits, zero);
    const __m256 t = _mm256_min_ps(_mm256_mul_ps(_mm256_mul_ps(kept_value, first), second), clamp);
    const __m256i bin = _mm256_min_epu32(_mm256_cvttps_epi32(t), last_bin);
    const __m256i slot = _mm256_add_epi32(bin, kept_offset);
    const int mask = _mm256_movemask_ps(_mm256_castsi256_ps(keep));
    const __m256i pack =
        _mm256_load_si256(reinterpret_cast<const __m256i*>(kPackTable.lanes[mask]));
    // The store writes 8 slots; only the first popcount(mask) count, the next store overwrites
    // the rest (`slots` has room for a whole tile plus one vector).
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(slots + kept_count),
                        _mm256_permutevar8x32_epi32(slot, pack));
    kept_count += __builtin_popcount(static_cast<unsigned>(mask));
  }
  alignas(32) uint32_t lanes_max[kLanes];
  alignas(32) uint32_t lanes_finite[kLanes];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes_max), max_bits);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes_finite), finite_count);
  uint32_t max_all = 0;
  uint32_t finite_all = 0;
  for (int lane = 0; lane < kLanes; ++lane) {
    max_all = std::max(max_all, lanes_max[lane]);
    finite_all += lanes_finite[lane];
  }
  // The tail (fewer than 8 values) through the portable loop, which starts at lane 0: i is a
  // multiple of 8, so lanes line up.
  uint32_t tail_max = std::max(*max_bits_out, max_all);
  uint32_t tail_finite = *finite_out + finite_all;
  kept_count += ComputeSlots(x + i, count - i, layout, slots + kept_count, &tail_max, &tail_finite);
  *max_bits_out = tail_max;
  *finite_out = tail_finite;
  return kept_count;
}

bool CpuHasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

// The packed slots of the kept values of x[0..count); returns how many.
int Slots(const float* x, int count, const SlotLayout& layout, uint32_t* slots, uint32_t* max_bits,
          uint32_t* finite) {
#if defined(__x86_64__)
  if (CpuHasAvx2()) return ComputeSlotsAvx2(x, count, layout, slots, max_bits, finite);
#endif
  return ComputeSlots(x, count, layout, slots, max_bits, finite);
}

absl::Status CheckNumBins(int64_t num_bins) {
  if (num_bins < 1 || num_bins > Histogram::kMaxBinsLimit) {
    return absl::InvalidArgumentError(absl::StrCat("mergeable histogram: num_bins ", num_bins,
                                                   " is outside [1, ", Histogram::kMaxBinsLimit,
                                                   "]"));
  }
  return absl::OkStatus();
}

}  // namespace

MergeableScale MergeableScaleFor(int exponent) {
  const int total = -exponent;  // in [-127, 149]
  const int first = std::clamp(total, -126, 127);
  return {.first = std::ldexp(1.0f, first), .second = std::ldexp(1.0f, total - first)};
}

MergeableBinned BinMergeable(std::span<const float> x, int exponent, int64_t bins) {
  MergeableBinned binned;
  std::vector<uint64_t>& result = binned.counts;
  result.assign(static_cast<size_t>(bins), 0);
  const int64_t n = static_cast<int64_t>(x.size());
  // A chunk zeroes and sums its own counts: give each at least as many values as bins.
  const int chunks =
      static_cast<int>(std::clamp<int64_t>(n / bins, 1, BalancedChunksFor(n, kParallelGrain / 2)));
  const int copies = bins <= kMaxBinsForCopies ? kCopies : 1;
  const size_t stride = static_cast<size_t>(bins);
  SlotLayout layout;
  layout.scale = MergeableScaleFor(exponent);
  layout.clamp = 0x1p30f;
  layout.last_bin = static_cast<uint32_t>(bins - 1);
  for (int lane = 0; lane < kLanes; ++lane) {
    const uint32_t copy_start = static_cast<uint32_t>((lane % copies) * stride);
    layout.kept_offset[lane] = copy_start;
  }

  std::mutex mu;
  uint32_t max_bits = 0;
  ParallelFor(n, chunks, [&](int, int64_t begin, int64_t end) {
    uint32_t chunk_max = 0;
    uint64_t chunk_finite = 0;
    std::vector<uint32_t> counts(stride * copies, 0);
    std::vector<uint64_t> flushed;  // only for chunks long enough to need it
    uint32_t slots[kTile + kLanes];
    auto flush = [&](std::vector<uint64_t>& into) {
      for (int c = 0; c < copies; ++c) {
        const uint32_t* copy = counts.data() + c * stride;
        for (int64_t b = 0; b < bins; ++b) into[b] += copy[b];
      }
      std::fill(counts.begin(), counts.end(), 0u);
    };
    for (int64_t piece = begin; piece < end; piece += kFlushEvery) {
      const int64_t piece_end = std::min(end, piece + kFlushEvery);
      uint32_t piece_finite = 0;  // < 2^31 values a piece
      for (int64_t i = piece; i < piece_end; i += kTile) {
        const int count = static_cast<int>(std::min<int64_t>(kTile, piece_end - i));
        const int kept = Slots(x.data() + i, count, layout, slots, &chunk_max, &piece_finite);
        CountTile(slots, kept, counts.data());
      }
      chunk_finite += piece_finite;
      if (piece_end < end) {
        if (flushed.empty()) flushed.assign(static_cast<size_t>(bins), 0);
        flush(flushed);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    flush(result);
    for (size_t b = 0; b < flushed.size(); ++b) result[b] += flushed[b];
    max_bits = std::max(max_bits, chunk_max);
    binned.finite += chunk_finite;
  });
  binned.abs_max = std::bit_cast<float>(max_bits);
  return binned;
}

absl::StatusOr<MergeableBatch> CountMergeable(std::span<const float> x,
                                              const MergeableOptions& options) {
  if (absl::Status status = CheckNumBins(options.num_bins); !status.ok()) return status;
  MergeableBatch batch;
  const FiniteAbsMaxResult range = FiniteAbsMax(x);
  batch.stats.elements = static_cast<int64_t>(x.size());
  batch.stats.nonfinite = range.nonfinite;
  const uint64_t finite = static_cast<uint64_t>(batch.stats.elements - range.nonfinite);
  if (range.abs_max == 0.0f) {
    if (!options.skip_zeros) batch.state.zeros = finite;
    return batch;
  }
  batch.state.abs_max = range.abs_max;
  batch.state.exponent = MergeableExponent(range.abs_max, options.num_bins);
  const int64_t bins = MergeableBinCount(range.abs_max, batch.state.exponent);
  batch.state.counts = BinMergeable(x, batch.state.exponent, bins).counts;
  if (!options.skip_zeros) {
    uint64_t binned = 0;
    for (const uint64_t c : batch.state.counts) binned += c;
    batch.state.counts[0] += finite - binned;
  }
  return batch;
}

}  // namespace qcal::kernels
