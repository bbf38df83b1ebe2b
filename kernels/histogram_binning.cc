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
// uint32 lane counts are flushed before they can wrap.
constexpr int64_t kFlushEvery = int64_t{1} << 31;
// Up to this many bins, four interleaved copies of the counts (one per element of a group of
// four) break the store-to-load chains of runs of equal bins; they still fit in L1/L2.
constexpr int64_t kMaxBinsForLanes = int64_t{1} << 14;

struct TileStats {
  uint32_t max_bits = 0;
  uint32_t nonfinite = 0;
};

// Writes each element's bin to out[i]; non-finite values (and zeros under skip_zeros) get the
// discard slot `last_bin + 1`. Masks instead of branches and selects: this form vectorises.
QCAL_VECTOR_CLONES void ComputeBins(const float* x, int count, float range_max, float bins_f,
                                    uint32_t last_bin, bool skip_zeros, uint32_t* out,
                                    TileStats* stats) {
  const uint32_t discard = last_bin + 1;
  const uint32_t zero_skip = skip_zeros ? ~0u : 0u;
  uint32_t max_bits = stats->max_bits;
  uint32_t nonfinite = stats->nonfinite;
  for (int i = 0; i < count; ++i) {
    const uint32_t u = std::bit_cast<uint32_t>(x[i]) & kAbsMask;
    const uint32_t finite = 0u - static_cast<uint32_t>(u < kInfBits);
    const uint32_t finite_bits = u & finite;
    max_bits = max_bits > finite_bits ? max_bits : finite_bits;
    nonfinite += static_cast<uint32_t>(u >= kInfBits);
    // The reference's two roundings: the quotient, then the product with the bin count.
    const float quotient = std::bit_cast<float>(finite_bits) / range_max;
    float t = quotient * bins_f;
    t = t < bins_f ? t : bins_f;  // keeps the conversion defined for values above range_max
    uint32_t bin = static_cast<uint32_t>(static_cast<int32_t>(t));
    bin = bin < last_bin ? bin : last_bin;
    const uint32_t keep = finite & ~(zero_skip & (0u - static_cast<uint32_t>(u == 0)));
    out[i] = (bin & keep) | (discard & ~keep);
  }
  stats->max_bits = max_bits;
  stats->nonfinite = nonfinite;
}

// Counts one tile of bin indices into `lanes` (num_lanes copies, `stride` apart).
void CountTile(const uint32_t* bins, int count, uint32_t* lanes, size_t stride, int num_lanes) {
  int i = 0;
  if (num_lanes == 4) {
    uint32_t* lane1 = lanes + stride;
    uint32_t* lane2 = lanes + 2 * stride;
    uint32_t* lane3 = lanes + 3 * stride;
    for (; i + 4 <= count; i += 4) {
      ++lanes[bins[i]];
      ++lane1[bins[i + 1]];
      ++lane2[bins[i + 2]];
      ++lane3[bins[i + 3]];
    }
  }
  for (; i < count; ++i) ++lanes[bins[i]];
}

}  // namespace

BinnedBatch BinAbsValues(std::span<const float> x, float range_max, int64_t num_bins,
                         bool skip_zeros) {
  BinnedBatch result;
  result.counts.assign(static_cast<size_t>(num_bins), 0);
  const int64_t n = static_cast<int64_t>(x.size());
  const int chunks = ChunksFor(n, kParallelGrain / 2);
  const int num_lanes = num_bins <= kMaxBinsForLanes ? 4 : 1;
  const size_t stride = static_cast<size_t>(num_bins) + 1;  // + the discard slot
  const float bins_f = static_cast<float>(num_bins);
  const uint32_t last_bin = static_cast<uint32_t>(num_bins - 1);

  std::mutex mu;
  uint32_t max_bits = 0;
  int64_t nonfinite = 0;
  ParallelFor(n, chunks, [&](int, int64_t begin, int64_t end) {
    std::vector<uint32_t> lanes(stride * num_lanes, 0);
    std::vector<uint64_t> local;  // only when a chunk is long enough to need flushing
    uint32_t bins[kTile];
    TileStats stats;
    int64_t chunk_nonfinite = 0;
    auto flush = [&](std::vector<uint64_t>& into) {
      for (int lane = 0; lane < num_lanes; ++lane) {
        const uint32_t* counts = lanes.data() + lane * stride;
        for (int64_t b = 0; b < num_bins; ++b) into[b] += counts[b];
      }
      std::fill(lanes.begin(), lanes.end(), 0u);
    };
    for (int64_t piece = begin; piece < end; piece += kFlushEvery) {
      const int64_t piece_end = std::min(end, piece + kFlushEvery);
      for (int64_t i = piece; i < piece_end; i += kTile) {
        const int count = static_cast<int>(std::min<int64_t>(kTile, piece_end - i));
        ComputeBins(x.data() + i, count, range_max, bins_f, last_bin, skip_zeros, bins, &stats);
        CountTile(bins, count, lanes.data(), stride, num_lanes);
      }
      chunk_nonfinite += stats.nonfinite;
      stats.nonfinite = 0;
      if (piece_end < end) {
        if (local.empty()) local.assign(static_cast<size_t>(num_bins), 0);
        flush(local);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    flush(result.counts);
    for (size_t b = 0; b < local.size(); ++b) result.counts[b] += local[b];
    max_bits = std::max(max_bits, stats.max_bits);
    nonfinite += chunk_nonfinite;
  });
  for (const uint64_t c : result.counts) result.binned += c;
  result.abs_max = std::bit_cast<float>(max_bits);
  result.nonfinite = nonfinite;
  return result;
}

}  // namespace qcal::kernels
