#include "kernels/histogram_binning.h"

#include <algorithm>
#include <bit>
#include <mutex>

#include "kernels/bin_indices.h"
#include "kernels/count_tile.h"
#include "kernels/parallel.h"

namespace qcal::kernels {
namespace {

// Slots are computed a tile at a time (vectorised, bin_indices.h), then counted (scalar).
constexpr int kTile = 1024;
// uint32 counts (and the finite count) are flushed before they can wrap.
constexpr int64_t kFlushEvery = int64_t{1} << 31;
// Up to this many bins the counts are kept in kCopies interleaved copies (lane l adds to copy
// l % kCopies), which breaks the store-to-load chains of runs of one bin (a ReLU6's clipped
// values, a constant channel) and still fits the L1/L2 caches. Zeros and non-finite values go
// to one discard slot per lane, so runs of them chain nothing either.
constexpr int64_t kMaxBinsForCopies = int64_t{1} << 14;
constexpr int kCopies = 2;

}  // namespace

BinnedBatch BinAbsValues(std::span<const float> x, float range_max, int64_t num_bins,
                         bool skip_zeros) {
  BinnedBatch result;
  result.counts.assign(static_cast<size_t>(num_bins), 0);
  const int64_t n = static_cast<int64_t>(x.size());
  const int chunks = BalancedChunksFor(n, kParallelGrain / 2);
  const int copies = num_bins <= kMaxBinsForCopies ? kCopies : 1;
  const size_t stride = static_cast<size_t>(num_bins) + kBinLanes;
  const BinIndexLayout layout =
      BinIndexLayout::For(range_max, num_bins, static_cast<uint32_t>(stride), copies);

  std::mutex mu;
  uint32_t max_bits = 0;
  uint64_t finite = 0;
  ParallelFor(n, chunks, [&](int, int64_t begin, int64_t end) {
    std::vector<uint32_t> counts(stride * copies, 0);
    std::vector<uint64_t> flushed;  // only for chunks long enough to need it
    uint32_t slots[kTile];
    BinIndexStats stats;
    uint64_t chunk_finite = 0;
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
        ComputeBinIndices(x.data() + i, count, layout, slots, &stats);
        CountTile(slots, count, counts.data());
      }
      chunk_finite += stats.finite;
      stats.finite = 0;
      if (piece_end < end) {
        if (flushed.empty()) flushed.assign(static_cast<size_t>(num_bins), 0);
        flush(flushed);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    flush(result.counts);
    for (size_t b = 0; b < flushed.size(); ++b) result.counts[b] += flushed[b];
    max_bits = std::max(max_bits, stats.max_bits);
    finite += chunk_finite;
  });
  for (const uint64_t c : result.counts) result.binned += c;
  // Every finite value is either counted in a bin or a zero; zero is in bin 0 for any range.
  const uint64_t zeros = finite - result.binned;
  if (!skip_zeros) {
    result.counts[0] += zeros;
    result.binned += zeros;
  }
  result.abs_max = std::bit_cast<float>(max_bits);
  result.nonfinite = n - static_cast<int64_t>(finite);
  return result;
}

}  // namespace qcal::kernels
