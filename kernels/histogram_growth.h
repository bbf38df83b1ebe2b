// How a histogram of |x| grows to cover a larger max (kernels/histogram.h and its CUDA twin share
// this rule, so both give the same edges and counts).
//
// The reference's rule first (pytorch-quantization, torch_hist=True): keep the bin width w =
// edges[1], append bins up to ceil(max / w) (histogram.h gives the exact arithmetic). When that
// would pass max_bins, qcal coarsens instead, on purpose (the reference allocates without limit:
// a first batch of max 1e-6 followed by data of max 10 asks for ~2e10 bins): adjacent bins are
// merged `merge` at a time, so the width becomes merge * w exactly (a power-of-two multiple is
// exact in float32) and bin j covers [j * merge * w, (j + 1) * merge * w), the union of the bins
// merged into it. merge is the smallest power of two for which the grown histogram has at most
// coarse_bins bins (the options' num_bins), not max_bins: the resolution a first batch of this
// range would have had (about coarse_bins / 2 to coarse_bins bins over the data). Entropy and
// mse search a histogram of about num_bins bins spanning the data (from start_bin 128 on); one
// just under max_bins with the data in a few scattered bins gives them nothing to choose from.
#ifndef QCAL_KERNELS_HISTOGRAM_GROWTH_H_
#define QCAL_KERNELS_HISTOGRAM_GROWTH_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace qcal::kernels {

struct HistogramGrowth {
  // Adjacent bins merged into one before growing (1: the reference's growth), a power of two;
  // the width grows by this factor, except that merge stops at 2^62 while the width goes on
  // doubling (any merge >= the bin count sums every count into bin 0 alike).
  int64_t merge = 1;
  // The edges after growth: edges.size() - 1 bins, at least ceil(old bins / merge), at most
  // max_bins (at most coarse_bins when merge > 1), and edges.back() >= the new max. The last edge
  // is FLT_MAX where the width's multiple would overflow float32 (a max within one bin width of
  // FLT_MAX).
  std::vector<float> edges;
};

// The growth that covers new_max: the reference's append when it stays within max_bins bins,
// else coarsened to at most coarse_bins bins. `edges` are the current edges (size >= 2,
// edges[0] == 0, width edges[1] > 0); new_max is finite and > edges.back();
// 1 <= coarse_bins <= max_bins. OUT_OF_RANGE only when no finite float32 width fits (coarse_bins
// == 1 with a max near FLT_MAX).
absl::StatusOr<HistogramGrowth> PlanGrowth(std::span<const float> edges, float new_max,
                                           int64_t max_bins, int64_t coarse_bins);

// Bin j of the result is the sum of counts[j * merge .. (j + 1) * merge) (exact, uint64):
// ceil(counts.size() / merge) bins. merge >= 1.
std::vector<uint64_t> MergeAdjacentBins(std::span<const uint64_t> counts, int64_t merge);

// `bins` + 1 edges k * width (ArangeEdges), the last clamped to FLT_MAX if it overflows.
std::vector<float> CoarseEdges(float width, int64_t bins);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_HISTOGRAM_GROWTH_H_
