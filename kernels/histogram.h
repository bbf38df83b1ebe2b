// Histogram of |x| over [0, last edge]: pytorch-quantization's HistogramCalibrator collection
// (torch_hist=True), with exact integer counts.
//
//   qcal::kernels::Histogram hist({.num_bins = 2048});
//   auto stats = hist.Collect(values);      // float32 values of one batch
//   hist.Counts(); hist.Edges();            // calib_hist, calib_bin_edges
//
// Growth rule (matches the reference): the first batch with a non-zero max m sets
// edges = linspace(0, m, num_bins + 1) in float32; a later batch with a larger max appends bins
// of the same width until it is covered, earlier counts stay in their bins.
// Where qcal differs from the reference, on purpose: NaN and +-inf are counted and left out
// (the reference raises or bins NaN); a first batch of only zeros is held as a count of zeros
// and re-binned when the first non-zero range arrives (the reference fails then); counts are
// uint64 (the reference's float counts saturate at 2^24).
//
// All histogram state lives behind this class, so a later layout (power-of-two bin widths,
// order-invariant and exactly mergeable) can replace the growth rule without touching callers.
#ifndef QCAL_KERNELS_HISTOGRAM_H_
#define QCAL_KERNELS_HISTOGRAM_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/collect_stats.h"

namespace qcal::kernels {

class Histogram {
 public:
  struct Options {
    // Bins on the first non-zero batch; >= 1.
    int num_bins = 2048;
    // Drop exact zeros before binning (the reference's skip_zeros).
    bool skip_zeros = false;
    // Growth beyond this many bins is refused with RESOURCE_EXHAUSTED (a single outlier far
    // beyond the range would otherwise allocate without limit).
    int64_t max_bins = int64_t{1} << 24;
  };

  explicit Histogram(Options options);

  // Adds |x| of the finite values of one batch. Large batches use all cores.
  // Errors (state unchanged): INVALID_ARGUMENT for an empty batch; RESOURCE_EXHAUSTED when the
  // batch's max would grow the histogram past options.max_bins.
  absl::StatusOr<CollectStats> Collect(std::span<const float> x);

  // Extends the range to cover `new_max` by appending bins of the current width.
  absl::Status Grow(float new_max);

  // Adds another histogram's counts. FAILED_PRECONDITION unless both have the same bin width
  // (or one of them is empty); the result covers the larger range.
  absl::Status Merge(const Histogram& other);

  // calib_hist: one count per bin; empty until a non-zero value has been binned.
  std::span<const uint64_t> Counts() const { return counts_; }
  // calib_bin_edges: Counts().size() + 1 float32 edges, edges[0] == 0.
  std::span<const float> Edges() const { return edges_; }
  // Exact running max of the finite |x| (the last edge can lie above it after growth).
  float abs_max() const { return abs_max_; }
  // Values binned (plus zeros held before the first non-zero batch).
  uint64_t total() const;
  // True until a batch has been collected.
  bool empty() const { return total() == 0 && !collected_; }
  const Options& options() const { return options_; }
  void Reset();

 private:
  Options options_;
  std::vector<uint64_t> counts_;
  std::vector<float> edges_;
  float abs_max_ = 0.0f;
  // Zeros seen while the range was still [0, 0]; they go to bin 0 once bins exist.
  uint64_t pending_zeros_ = 0;
  bool collected_ = false;
};

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_HISTOGRAM_H_
