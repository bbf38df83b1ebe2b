// The hot loop of the mergeable layout (mergeable_histogram.h): counts of floor(|x| / 2^k), exact,
// in one pass over float32 values. CountMergeable runs it after the max pass; the CUDA twin
// computes the same bins with the same two scale factors.
#ifndef QCAL_KERNELS_MERGEABLE_BINNING_H_
#define QCAL_KERNELS_MERGEABLE_BINNING_H_

#include <cstdint>
#include <span>
#include <vector>

namespace qcal::kernels {

// 2^-k as two normal float32 powers of two, first * second (2^-k itself is no normal float32
// for k < -127 or k > 126). (|x| * first) * second is |x| / 2^k exactly whenever it is >= 1:
// scaling by a power of two is exact unless the result is subnormal, and then it is below 1
// (bin 0) before and after rounding.
struct MergeableScale {
  float first = 1.0f;
  float second = 1.0f;
};

// For kMinMergeableExponent <= exponent <= kMaxMergeableExponent.
MergeableScale MergeableScaleFor(int exponent);

struct MergeableBinned {
  // counts[b]: the finite, non-zero |x| with floor(|x| / 2^exponent) == b (zeros and NaN/+-inf
  // are not counted; values beyond the last bin are clamped into it).
  std::vector<uint64_t> counts;
  float abs_max = 0.0f;  // largest finite |x| (exact), 0 if none
  uint64_t finite = 0;   // finite values, zeros included
};

// One pass over x (float32) binned at `exponent` into `bins` bins (1 <= bins <= 2^25). After a
// max pass nothing is clamped; a caller binning against a held exponent checks abs_max to know.
// Large spans use every core; the result does not depend on how the work is split.
MergeableBinned BinMergeable(std::span<const float> x, int exponent, int64_t bins);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_MERGEABLE_BINNING_H_
