// The vectorised half of histogram binning (histogram_binning.cc): each value's slot in a chunk's
// count buffer, pytorch-quantization's (torch.histc's) bin formula bit for bit. The counting
// half then adds one per slot.
//
//   BinIndexLayout layout = BinIndexLayout::For(range_max, num_bins, stride, copies);
//   BinIndexStats stats;
//   ComputeBinIndices(x, count, layout, slots, &stats);   // slots[i] for x[i]
//   for (int i = 0; i < count; ++i) ++counts[slots[i]];
//
// Two implementations compute the same slots and stats: a portable loop that the compiler
// vectorises for the baseline instruction set, and an AVX2 one (x86-64 CPUs that have it,
// chosen at run time), shorter because the hardware's float -> int32 conversion and unsigned
// min do the clamping.
#ifndef QCAL_KERNELS_BIN_INDICES_H_
#define QCAL_KERNELS_BIN_INDICES_H_

#include <array>
#include <cstdint>

namespace qcal::kernels {

// Values are handled in groups of kBinLanes; element i of a call is in lane i % kBinLanes.
inline constexpr int kBinLanes = 8;

struct BinIndexLayout {
  float range_max = 1.0f;  // > 0
  float bins_f = 1.0f;     // num_bins as float32 (exact: num_bins <= 2^24)
  uint32_t last_bin = 0;   // num_bins - 1
  // A counted value's slot is its bin plus kept_offset[lane] (the copy of the counts that
  // lane adds to); a zero or non-finite value goes to discard_slot[lane] (never read as a bin).
  std::array<uint32_t, kBinLanes> kept_offset{};
  std::array<uint32_t, kBinLanes> discard_slot{};

  // `copies` interleaved copies of the counts, `stride` slots apart (stride >= num_bins +
  // kBinLanes): lane l adds to copy l % copies and discards into that copy's slots num_bins ..
  // num_bins + kBinLanes - 1.
  static BinIndexLayout For(float range_max, int64_t num_bins, uint32_t stride, int copies);
};

struct BinIndexStats {
  uint32_t max_bits = 0;  // bits of the largest finite |x| (the sign cleared orders them)
  uint32_t finite = 0;    // finite values, zeros included (callers keep it below 2^32)
};

// slots[i] for x[0..count): bin = trunc(float32(float32(|x| / range_max) * bins_f)) clamped to
// last_bin, plus kept_offset[i % 8]; discard_slot[i % 8] for +-0, NaN and +-inf. Folds the
// max and the finite count into `stats`. Uses AVX2 where the CPU has it.
void ComputeBinIndices(const float* x, int count, const BinIndexLayout& layout, uint32_t* slots,
                       BinIndexStats* stats);

// The implementations, for tests. ComputeBinIndicesAvx2 returns false (and does nothing) where
// the CPU or the build has no AVX2.
void ComputeBinIndicesPortable(const float* x, int count, const BinIndexLayout& layout,
                               uint32_t* slots, BinIndexStats* stats);
bool ComputeBinIndicesAvx2(const float* x, int count, const BinIndexLayout& layout, uint32_t* slots,
                           BinIndexStats* stats);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_BIN_INDICES_H_
