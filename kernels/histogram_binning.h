// The hot loop of histogram collection: counts of |x| in equal bins of [0, range_max] with
// pytorch-quantization's (torch.histc's) arithmetic, in one pass that also finds max |x|.
#ifndef QCAL_KERNELS_HISTOGRAM_BINNING_H_
#define QCAL_KERNELS_HISTOGRAM_BINNING_H_

#include <cstdint>
#include <span>
#include <vector>

namespace qcal::kernels {

struct BinnedBatch {
  std::vector<uint64_t> counts;  // num_bins counts
  uint64_t binned = 0;           // values counted in `counts`
  float abs_max = 0.0f;          // largest finite |x| (exact), 0 if none
  int64_t nonfinite = 0;         // NaN and +-inf: not counted
};

// Bins the finite |x| (float32): bin = trunc(float32(float32(|x| / range_max) * num_bins)),
// clamped to num_bins - 1 (so range_max itself, and anything above it, lands in the last bin).
// skip_zeros leaves out exact zeros. Requires range_max > 0 and 1 <= num_bins <= 2^24 (the bin
// index must be exact in float32). Large spans use every core; the counts do not depend on how
// the work is split.
BinnedBatch BinAbsValues(std::span<const float> x, float range_max, int64_t num_bins,
                         bool skip_zeros);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_HISTOGRAM_BINNING_H_
