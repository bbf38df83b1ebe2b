// CountMergeable and its binning pass (mergeable_binning.h), in the style of
// histogram_binning.cc: slots a tile at a time (vectorised), then counted per thread in uint32
// and summed into uint64.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "kernels/finite_abs_max.h"
#include "kernels/histogram.h"
#include "kernels/mergeable_binning.h"
#include "kernels/mergeable_histogram.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"

namespace qcal::kernels {
namespace {

constexpr uint32_t kAbsMask = 0x7fffffffu;
constexpr uint32_t kInfBits = 0x7f800000u;
constexpr int kLanes = 8;
constexpr int kTile = 1024;
// uint32 counts are flushed before they can wrap.
constexpr int64_t kFlushEvery = int64_t{1} << 31;
// Up to this many bins, lanes alternate between two copies of the counts, which breaks the
// store-to-load chains of runs of one bin; zeros and non-finite values go to a discard slot per
// lane (histogram_binning.cc says more).
constexpr int64_t kMaxBinsForCopies = int64_t{1} << 14;
constexpr int kCopies = 2;

struct SlotLayout {
  MergeableScale scale;
  float clamp = 0.0f;  // keeps the float -> int32 conversion defined
  uint32_t last_bin = 0;
  std::array<uint32_t, kLanes> kept_offset{};
  std::array<uint32_t, kLanes> discard_slot{};
};

QCAL_VECTOR_CLONES void ComputeSlots(const float* x, int count, const SlotLayout& layout,
                                     uint32_t* slots) {
  const float first = layout.scale.first;
  const float second = layout.scale.second;
  const float clamp = layout.clamp;
  const uint32_t last_bin = layout.last_bin;
  int i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    for (int lane = 0; lane < kLanes; ++lane) {
      const uint32_t u = std::bit_cast<uint32_t>(x[i + lane]) & kAbsMask;
      const uint32_t finite_bits = u & (0u - static_cast<uint32_t>(u < kInfBits));
      float t = (std::bit_cast<float>(finite_bits) * first) * second;
      t = t < clamp ? t : clamp;
      uint32_t bin = static_cast<uint32_t>(static_cast<int32_t>(t));
      bin = bin < last_bin ? bin : last_bin;
      const uint32_t keep = 0u - static_cast<uint32_t>(finite_bits != 0);
      slots[i + lane] =
          ((bin + layout.kept_offset[lane]) & keep) | (layout.discard_slot[lane] & ~keep);
    }
  }
  for (; i < count; ++i) {
    const int lane = i % kLanes;
    const uint32_t u = std::bit_cast<uint32_t>(x[i]) & kAbsMask;
    const bool kept = u != 0 && u < kInfBits;
    float t = (std::bit_cast<float>(u) * first) * second;
    t = t < clamp ? t : clamp;
    const uint32_t bin = std::min(static_cast<uint32_t>(static_cast<int32_t>(t)), last_bin);
    slots[i] = kept ? bin + layout.kept_offset[lane] : layout.discard_slot[lane];
  }
}

void CountTile(const uint32_t* slots, int count, uint32_t* counts) {
  int i = 0;
  for (; i + 4 <= count; i += 4) {
    ++counts[slots[i]];
    ++counts[slots[i + 1]];
    ++counts[slots[i + 2]];
    ++counts[slots[i + 3]];
  }
  for (; i < count; ++i) ++counts[slots[i]];
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

std::vector<uint64_t> BinMergeable(std::span<const float> x, int exponent, int64_t bins) {
  std::vector<uint64_t> result(static_cast<size_t>(bins), 0);
  const int64_t n = static_cast<int64_t>(x.size());
  // A chunk zeroes and sums its own counts: give each at least as many values as bins.
  const int chunks =
      static_cast<int>(std::clamp<int64_t>(n / bins, 1, BalancedChunksFor(n, kParallelGrain / 2)));
  const int copies = bins <= kMaxBinsForCopies ? kCopies : 1;
  const size_t stride = static_cast<size_t>(bins) + kLanes;
  SlotLayout layout;
  layout.scale = MergeableScaleFor(exponent);
  layout.clamp = 0x1p30f;
  layout.last_bin = static_cast<uint32_t>(bins - 1);
  for (int lane = 0; lane < kLanes; ++lane) {
    const uint32_t copy_start = static_cast<uint32_t>((lane % copies) * stride);
    layout.kept_offset[lane] = copy_start;
    layout.discard_slot[lane] = copy_start + static_cast<uint32_t>(bins + lane);
  }

  std::mutex mu;
  ParallelFor(n, chunks, [&](int, int64_t begin, int64_t end) {
    std::vector<uint32_t> counts(stride * copies, 0);
    std::vector<uint64_t> flushed;  // only for chunks long enough to need it
    uint32_t slots[kTile];
    auto flush = [&](std::vector<uint64_t>& into) {
      for (int c = 0; c < copies; ++c) {
        const uint32_t* copy = counts.data() + c * stride;
        for (int64_t b = 0; b < bins; ++b) into[b] += copy[b];
      }
      std::fill(counts.begin(), counts.end(), 0u);
    };
    for (int64_t piece = begin; piece < end; piece += kFlushEvery) {
      const int64_t piece_end = std::min(end, piece + kFlushEvery);
      for (int64_t i = piece; i < piece_end; i += kTile) {
        const int count = static_cast<int>(std::min<int64_t>(kTile, piece_end - i));
        ComputeSlots(x.data() + i, count, layout, slots);
        CountTile(slots, count, counts.data());
      }
      if (piece_end < end) {
        if (flushed.empty()) flushed.assign(static_cast<size_t>(bins), 0);
        flush(flushed);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    flush(result);
    for (size_t b = 0; b < flushed.size(); ++b) result[b] += flushed[b];
  });
  return result;
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
  batch.state.counts = BinMergeable(x, batch.state.exponent, bins);
  if (!options.skip_zeros) {
    uint64_t binned = 0;
    for (const uint64_t c : batch.state.counts) binned += c;
    batch.state.counts[0] += finite - binned;
  }
  return batch;
}

}  // namespace qcal::kernels
