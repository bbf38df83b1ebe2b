#include "kernels/histogram_binning.h"

#include <algorithm>
#include <bit>
#include <mutex>

#include "kernels/parallel.h"
#include "kernels/simd.h"

namespace qcal::kernels {
namespace {

constexpr uint32_t kAbsMask = 0x7fffffffu;
constexpr uint32_t kInfBits = 0x7f800000u;
// Bin indices are computed a tile at a time (vectorised), then counted (scalar).
constexpr int kTile = 1024;
// uint32 counts are flushed before they can wrap.
constexpr int64_t kFlushEvery = int64_t{1} << 31;
// Values that are not counted through their bin (zeros, counted apart, and non-finite values)
// are sent to one of these extra slots in turn, so that a run of them does not chain
// increments of one memory location.
constexpr uint32_t kDiscardSlots = 16;
// Up to this many bins the counts are kept in kCopies interleaved copies (element i adds to
// copy i % kCopies), which breaks the store-to-load chains of runs of one bin (a ReLU6's
// clipped values, a constant channel) and still fits the L1/L2 caches.
constexpr int64_t kMaxBinsForCopies = int64_t{1} << 14;
constexpr int kCopies = 2;

struct TileStats {
  uint32_t max_bits = 0;
  uint32_t nonfinite = 0;
  uint32_t zeros = 0;
};

// Writes each element's bin to out[i]; zeros and non-finite values get a discard slot
// num_bins + (i % kDiscardSlots) and are counted in `stats`. Masks instead of branches and
// selects: this form vectorises.
QCAL_VECTOR_CLONES void ComputeBins(const float* x, int count, float range_max, float bins_f,
                                    uint32_t last_bin, uint32_t* out, TileStats* stats) {
  const uint32_t discard = last_bin + 1;
  uint32_t max_bits = stats->max_bits;
  uint32_t nonfinite = stats->nonfinite;
  uint32_t zeros = stats->zeros;
  for (int i = 0; i < count; ++i) {
    const uint32_t u = std::bit_cast<uint32_t>(x[i]) & kAbsMask;
    const uint32_t finite = 0u - static_cast<uint32_t>(u < kInfBits);
    const uint32_t finite_bits = u & finite;
    max_bits = max_bits > finite_bits ? max_bits : finite_bits;
    nonfinite += static_cast<uint32_t>(u >= kInfBits);
    zeros += static_cast<uint32_t>(u == 0);
    // The reference's two roundings: the quotient, then the product with the bin count.
    const float quotient = std::bit_cast<float>(finite_bits) / range_max;
    float t = quotient * bins_f;
    t = t < bins_f ? t : bins_f;  // keeps the conversion defined for values above range_max
    uint32_t bin = static_cast<uint32_t>(static_cast<int32_t>(t));
    bin = bin < last_bin ? bin : last_bin;
    const uint32_t keep = finite & (0u - static_cast<uint32_t>(u != 0));
    const uint32_t slot = discard + (static_cast<uint32_t>(i) & (kDiscardSlots - 1));
    out[i] = (bin & keep) | (slot & ~keep);
  }
  stats->max_bits = max_bits;
  stats->nonfinite = nonfinite;
  stats->zeros = zeros;
}

// Counts one tile of bin indices into `copies` copies of the counts, `stride` apart.
template <int kCopiesUsed>
void CountTile(const uint32_t* bins, int count, uint32_t* counts, size_t stride) {
  int i = 0;
  for (; i + kCopiesUsed <= count; i += kCopiesUsed) {
    for (int c = 0; c < kCopiesUsed; ++c) ++counts[c * stride + bins[i + c]];
  }
  for (; i < count; ++i) ++counts[bins[i]];
}

}  // namespace

BinnedBatch BinAbsValues(std::span<const float> x, float range_max, int64_t num_bins,
                         bool skip_zeros) {
  BinnedBatch result;
  result.counts.assign(static_cast<size_t>(num_bins), 0);
  const int64_t n = static_cast<int64_t>(x.size());
  const int chunks = ChunksFor(n, kParallelGrain / 2);
  const int copies = num_bins <= kMaxBinsForCopies ? kCopies : 1;
  const size_t stride = static_cast<size_t>(num_bins) + kDiscardSlots;
  const float bins_f = static_cast<float>(num_bins);
  const uint32_t last_bin = static_cast<uint32_t>(num_bins - 1);

  std::mutex mu;
  uint32_t max_bits = 0;
  int64_t nonfinite = 0;
  uint64_t zeros = 0;
  ParallelFor(n, chunks, [&](int, int64_t begin, int64_t end) {
    std::vector<uint32_t> counts(stride * copies, 0);
    std::vector<uint64_t> flushed;  // only for chunks long enough to need it
    uint32_t bins[kTile];
    TileStats stats;
    int64_t chunk_nonfinite = 0;
    uint64_t chunk_zeros = 0;
    auto flush = [&](std::vector<uint64_t>& into) {
      for (int c = 0; c < copies; ++c) {
        const uint32_t* copy = counts.data() + c * stride;
        for (int64_t b = 0; b < num_bins; ++b) into[b] += copy[b];
      }
      std::fill(counts.begin(), counts.end(), 0u);
    };
    for (int64_t piece = begin; piece < end; piece += kFlushEvery) {
      const int64_t piece_end = std::min(end, piece + kFlushEvery);
      for (int64_t i = piece; i < piece_end; i += kTile) {
        const int count = static_cast<int>(std::min<int64_t>(kTile, piece_end - i));
        ComputeBins(x.data() + i, count, range_max, bins_f, last_bin, bins, &stats);
        if (copies == kCopies) {
          CountTile<kCopies>(bins, count, counts.data(), stride);
        } else {
          CountTile<1>(bins, count, counts.data(), stride);
        }
      }
      chunk_nonfinite += stats.nonfinite;
      chunk_zeros += stats.zeros;
      stats.nonfinite = 0;
      stats.zeros = 0;
      if (piece_end < end) {
        if (flushed.empty()) flushed.assign(static_cast<size_t>(num_bins), 0);
        flush(flushed);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    flush(result.counts);
    for (size_t b = 0; b < flushed.size(); ++b) result.counts[b] += flushed[b];
    max_bits = std::max(max_bits, stats.max_bits);
    nonfinite += chunk_nonfinite;
    zeros += chunk_zeros;
  });
  if (!skip_zeros) result.counts[0] += zeros;  // zero is in bin 0 for any range
  for (const uint64_t c : result.counts) result.binned += c;
  result.abs_max = std::bit_cast<float>(max_bits);
  result.nonfinite = nonfinite;
  return result;
}

}  // namespace qcal::kernels
