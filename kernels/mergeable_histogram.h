// The mergeable histogram layout: bins of width 2^k anchored at 0, so that a histogram of |x| is a
// function of the multiset of values alone, and two histograms add exactly. Any order, any
// batching, any split over trainers or servers gives the same counts bit for bit.
//
//   MergeableState state;                                      // empty
//   QCAL_ASSIGN_OR_RETURN(auto batch, CountMergeable(values, {.num_bins = 2048}));
//   QCAL_RETURN_IF_ERROR(MergeMergeable(state, batch.state, 2048));   // exact; order-free
//
// The rule. For abs_max m > 0 (the largest finite |x|), k = MergeableExponent(m, num_bins) is the
// smallest integer in [kMinMergeableExponent, kMaxMergeableExponent] with
// floor(m / 2^k) + 1 <= 2 * num_bins. The state holds floor(m / 2^k) + 1 bins, bin i counting the
// |x| in [i * 2^k, (i + 1) * 2^k): between num_bins + 1 and 2 * num_bins bins, so the resolution
// over [0, m] is never coarser than num_bins. A value's bin floor(|x| * 2^-k) is exact (a power-of-
// two scaling loses no bit, and floor of anything below 1 is 0 even where the product is
// subnormal). A larger max raises k; covering it merges adjacent bins 2^(k' - k) at a time
// (exact). Merging two states coarsens the finer one to the other's k and adds the counts; since k
// depends on max(m1, m2) only, that is the state the union of their values gives.
//
// Extremes. Subnormal maxima: k stops at -149, the spacing of float32 subnormals, so each bin holds
// exactly one representable value and the state has fewer than num_bins bins (floor(m * 2^149) +
// 1 of them): nothing is lost, there is no finer resolution to have. Maxima near FLT_MAX: k stays
// at most 127 for any num_bins >= 1 (m < 2^128, so m / 2^127 < 2); a last edge (n * 2^k) beyond
// FLT_MAX is written as FLT_MAX (MergeableEdges), so edges stay finite.
//
// How its amax differs from the reference layout's (pytorch-quantization's num_bins bins over
// [0, first max]): both search the same counts-and-edges form (amax_search.h), only the edges
// differ (bin width here at most m / num_bins, there m_first / num_bins). max is identical.
// percentile returns the lower edge of the bin where the cdf reaches p, so each layout lies
// within one of its bin widths of the data's order statistics around p * n (further apart only
// where p * n is an integer and the double cdf reaches p one value early or late, across empty
// bins). Entropy and mse choose the edge or center with the best score, and the score's shape
// depends on the bins: mostly they move by about a bin, but a flat KL curve can jump far. On
// the golden cases (tests/golden/layout_diff_golden.cc): median relative difference 4e-4
// (entropy), 4e-4 (mse), 2e-4 (percentile); largest 17% (entropy, 64 bins, stride 2; 8.5% on
// laplace at 2048 bins), 3.6% (mse, 64 bins), 15% (percentile 99.9 at a cdf tie). On the
// Fashion-MNIST demo the input amax move by at most 0.05% (percentile) and 0.66% (mse); entropy by
// 0.6% on four layers and 28.8% on one (a flat KL curve); top-1 by at most 0.02 points for every
// method (README, "Same data, same amax").
//
// The state is a plain value: no locking, no hidden caches. kernels::Histogram holds one when its
// options ask for HistogramLayout::kMergeable, and its CUDA twin keeps the same counts in device
// memory.
#ifndef QCAL_KERNELS_MERGEABLE_HISTOGRAM_H_
#define QCAL_KERNELS_MERGEABLE_HISTOGRAM_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/collect_stats.h"

namespace qcal::kernels {

enum class HistogramLayout {
  // pytorch-quantization's: num_bins bins over [0, first batch's max], grown by appending bins.
  kReference,
  // Bins of width 2^k anchored at 0 (this file).
  kMergeable,
};

// "reference" or "mergeable".
absl::string_view HistogramLayoutName(HistogramLayout layout);

// Bin widths 2^k stay within float32: the smallest subnormal, and the largest power of two.
inline constexpr int kMinMergeableExponent = -149;
inline constexpr int kMaxMergeableExponent = 127;

// A histogram of |x| in canonical form (the same fields as qcal.v1.MergeableHistogram):
// - abs_max == 0: exponent 0, counts empty, `zeros` the zeros counted (none with skip_zeros);
// - abs_max > 0: exponent == MergeableExponent(abs_max, num_bins), counts.size() ==
//   MergeableBinCount(abs_max, exponent), counts.back() >= 1, zeros == 0 (zeros are in bin 0).
struct MergeableState {
  int exponent = 0;
  std::vector<uint64_t> counts{};
  // Exact max of the finite |x| counted; 0 while none is non-zero.
  float abs_max = 0.0f;
  uint64_t zeros = 0;

  // Values counted: the sum of counts, plus zeros.
  uint64_t total() const;
  bool empty() const { return abs_max == 0.0f && zeros == 0; }
  friend bool operator==(const MergeableState&, const MergeableState&) = default;
};

// k for a finite abs_max > 0 and num_bins >= 1 (rule above).
int MergeableExponent(float abs_max, int64_t num_bins);

// floor(abs_max / 2^exponent) + 1: the bins covering [0, abs_max].
int64_t MergeableBinCount(float abs_max, int exponent);

// bins + 1 float32 edges i * 2^exponent, the last clamped to FLT_MAX if it overflows. Exact
// while i <= 2^24; beyond that (only num_bins > 2^23 has more bins) i * 2^k rounds to the
// nearest float32, so neighbouring edges may coincide there; the counts stay exact.
std::vector<float> MergeableEdges(int exponent, int64_t bins);

// Checks that `state` is canonical for num_bins (1 .. Histogram::kMaxBinsLimit): INVALID_ARGUMENT
// naming the field and the value it should have (abs_max negative or not finite, exponent, bin
// count, a zero last count, zeros beside bins, a non-zero exponent without bins).
absl::Status ValidateMergeableState(const MergeableState& state, int64_t num_bins);

// Adds `other` into `state` (both canonical for num_bins): the result is the canonical state of
// the union of their values. INVALID_ARGUMENT when either is not canonical
// (ValidateMergeableState); OUT_OF_RANGE when a count or the total would pass 2^64 - 1. `state`
// is unchanged on error. O(bins) (about 4 us for 4096 bins).
absl::Status MergeMergeable(MergeableState& state, const MergeableState& other, int64_t num_bins);

// `state` (canonical) re-binned at a coarser exponent >= state.exponent, to `bins` bins (at least
// the bins its counts need at that exponent): the exact sums of adjacent bins (bin i goes to
// i >> (exponent - state.exponent)). A state without bins gives its zeros in bin 0.
std::vector<uint64_t> CoarsenMergeableCounts(const MergeableState& state, int exponent,
                                             int64_t bins);

struct MergeableBatch {
  MergeableState state{};
  CollectStats stats{};
};

struct MergeableOptions {
  int64_t num_bins = 2048;
  // Leave out exact zeros (pytorch-quantization's skip_zeros).
  bool skip_zeros = false;
};

// The canonical state of one batch's finite |x| (float32): one pass for the max, one to bin
// (mergeable_binning.h; AVX2 where the CPU has it). Large spans use every core; the counts do
// not depend on how the work is split. NaN and +-inf are counted in stats.nonfinite and left
// out. INVALID_ARGUMENT for num_bins out of [1, Histogram::kMaxBinsLimit]. A caller counting
// many batches saves the max pass with a kernels::Histogram in this layout, which bins each
// batch at the held exponent in one pass while the exponent holds.
absl::StatusOr<MergeableBatch> CountMergeable(std::span<const float> x,
                                              const MergeableOptions& options);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_MERGEABLE_HISTOGRAM_H_
