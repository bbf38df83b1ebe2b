// Histogram of |x| over [0, last edge]: pytorch-quantization's HistogramCalibrator collection
// (torch_hist=True), with exact integer counts.
//
//   auto hist = qcal::kernels::Histogram::Create({.num_bins = 2048});
//   auto stats = hist->Collect(values);     // float32 values of one batch
//   hist->Counts(); hist->Edges();          // calib_hist, calib_bin_edges
//
// Arithmetic (matches the reference bit for bit, see ../shared/golden/README.md): the first
// batch with a non-zero max m sets edges = torch.linspace(0, m, num_bins + 1) in float32 and bins
// v at trunc(float32(float32(v / m) * num_bins)), clamped to the last bin. A later batch whose max
// lies above the last edge grows the range: width = edges[1], num_bins = ceil(max / width), edges
// torch.arange(0, max + width, width); earlier counts stay in their bins. Later batches are
// binned against the current last edge, the first against its own max (histogram_edges.h
// reproduces the reference's edge values, which the last edge depends on).
//
// Where qcal differs from the reference, on purpose: NaN and +-inf are counted and left out
// (the reference raises or bins NaN); a batch of only zeros before any range exists is held as a
// count of zeros and re-binned (into bin 0) when the first non-zero range arrives (the reference
// fails then); counts are uint64 (the reference's float counts saturate at 2^24); a value that
// rounding leaves above the last edge is counted in the last bin (torch.histc would drop it);
// should the reference's ceil(max / width) bins and its arange edges ever disagree by rounding,
// the edges decide.
//
// Growth past max_bins coarsens instead of allocating (the reference appends bins without limit,
// so a first batch of max 1e-6 followed by data of max 10 asks it for ~2e10 bins and runs out of
// memory): adjacent bins are merged a power of two k at a time, their uint64 counts summed
// exactly; k is the smallest for which the grown histogram has at most num_bins bins (not
// max_bins): the resolution the first batch would have set had it seen this range, since entropy
// and mse search about num_bins bins spanning the data. The width becomes k * width (exact in
// float32), bin i covers [i * width, (i + 1) * width) with edges torch.arange(0, .., width) as
// before, and the batch is binned against the coarsened range (histogram_growth.h). abs_max and
// total stay exact. Cases that never pass max_bins (all golden cases; the default 2^20 bins hold
// 512 times the first range at 2048 bins) are binned exactly as the reference bins them.
//
// A Histogram is a value (copyable, movable) and not thread-safe: callers serialise access to
// one instance; different instances may be used from different threads at once.
//
// Options::layout picks the bins: the reference layout above, or the mergeable layout of
// mergeable_histogram.h (bins of width 2^k anchored at 0; order-invariant and exactly mergeable),
// whose Counts() and Edges() the same amax searches read.
#ifndef QCAL_KERNELS_HISTOGRAM_H_
#define QCAL_KERNELS_HISTOGRAM_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/collect_stats.h"
#include "kernels/mergeable_histogram.h"

namespace qcal::kernels {

class Histogram {
 public:
  // Bin indices must stay exact in float32.
  static constexpr int64_t kMaxBinsLimit = int64_t{1} << 24;
  // 8 MiB of uint64 counts: room for 512 times the first range at 2048 bins before coarsening.
  static constexpr int64_t kDefaultMaxBins = int64_t{1} << 20;

  struct Options {
    // Bins on the first non-zero batch; 1 <= num_bins <= bin_limit() (and kMaxBinsLimit).
    int num_bins = 2048;
    // Drop exact zeros before binning (the reference's skip_zeros).
    bool skip_zeros = false;
    // Growth beyond this many bins coarsens the histogram to at most num_bins bins (see above)
    // instead of allocating without limit; num_bins <= max_bins <= kMaxBinsLimit. Unset:
    // bin_limit().
    std::optional<int64_t> max_bins = std::nullopt;
    // Per-channel histograms are not supported (as in the reference): an axis is refused.
    std::optional<int> axis = std::nullopt;
    // kReference: the rule above, bit for bit. kMergeable: mergeable_histogram.h (max_bins is
    // then unused: the state always holds at most 2 * num_bins bins).
    HistogramLayout layout = HistogramLayout::kReference;

    // max_bins, or when unset the larger of kDefaultMaxBins and num_bins.
    int64_t bin_limit() const {
      return max_bins.value_or(std::max<int64_t>(kDefaultMaxBins, num_bins));
    }
  };

  // Checks `options`: INVALID_ARGUMENT for num_bins or max_bins out of range, or an axis.
  static absl::Status ValidateOptions(const Options& options);
  // A histogram with valid options (ValidateOptions' errors otherwise).
  static absl::StatusOr<Histogram> Create(Options options);

  // Prefer Create. Options that ValidateOptions refuses make every Collect/Grow/Merge return
  // that error.
  explicit Histogram(Options options);

  // Adds |x| of the finite values of one batch. Large batches use all cores.
  // A max beyond the last edge grows the range (past options.bin_limit(), coarsening to at most
  // num_bins bins).
  // Errors (state unchanged): INVALID_ARGUMENT for an empty batch; OUT_OF_RANGE only for
  // num_bins == 1 and a max so near FLT_MAX that no float32 bin width covers it.
  absl::StatusOr<CollectStats> Collect(std::span<const float> x);

  // Extends the range to cover `new_max` by appending bins of the current width; past
  // options.bin_limit(), coarsened to at most num_bins bins (on a histogram without bins yet:
  // sets the first batch's edges for max `new_max`). No-op when covered.
  // Errors (state unchanged): INVALID_ARGUMENT unless new_max is finite and >= 0; OUT_OF_RANGE
  // as Collect. Mergeable layout: the bins are a function of the values counted, so a range
  // cannot be grown ahead of them (the state would then depend on the calls made): a no-op when
  // new_max is 0 or within the last edge, FAILED_PRECONDITION otherwise.
  absl::Status Grow(float new_max);

  // Adds another histogram's counts; the result covers the larger range. Bin widths that differ
  // by a power of two up to 2^30 (histograms coarsened differently) merge at the coarser width,
  // and a result past options.bin_limit() is coarsened to at most num_bins bins, as growth is.
  // FAILED_PRECONDITION for other widths; OUT_OF_RANGE as Collect. State unchanged on error.
  // Mergeable layout: exact, any two states with the same num_bins (MergeMergeable);
  // FAILED_PRECONDITION for layouts or num_bins that differ.
  absl::Status Merge(const Histogram& other);

  // The reference layout's state as it is held (for state files): counts, edges, abs_max,
  // total, pending zeros, and whether a batch was collected.
  struct ReferenceState {
    std::vector<uint64_t> counts{};
    std::vector<float> edges{};
    float abs_max = 0.0f;
    uint64_t total = 0;
    uint64_t pending_zeros = 0;
    bool collected = false;
    friend bool operator==(const ReferenceState&, const ReferenceState&) = default;
  };

  // The mergeable layout's state (canonical for options.num_bins). FAILED_PRECONDITION for the
  // reference layout.
  absl::StatusOr<MergeableState> ExportMergeable() const;
  // Adds a canonical state (a trainer's pre-aggregated counts, or a saved state) exactly, and
  // counts as a collected batch (empty() is false afterwards, as after Collect of a batch with
  // nothing to bin): callers holding no batch should not merge.
  // FAILED_PRECONDITION for the reference layout; INVALID_ARGUMENT when ValidateMergeableState
  // refuses it for options.num_bins; OUT_OF_RANGE when a count would overflow. State unchanged on
  // error.
  absl::Status MergeMergeable(const MergeableState& state);
  // The reference layout's state. FAILED_PRECONDITION for the mergeable layout.
  absl::StatusOr<ReferenceState> ExportReference() const;
  // Replaces the state with a saved reference-layout state. FAILED_PRECONDITION for the mergeable
  // layout; INVALID_ARGUMENT (naming the field) when it is inconsistent: edges not counts + 1
  // (or both empty), edges not starting at 0 or not increasing, a bin count beyond bin_limit(),
  // abs_max negative, not finite, beyond the last edge by more than a bin (linspace
  // may round the first last edge below the max) or non-zero without bins, total not the
  // sum of counts and pending zeros, pending zeros beside bins, values counted but `collected`
  // false. State unchanged on error.
  absl::Status RestoreReference(const ReferenceState& state);

  // calib_hist: one count per bin; empty until a non-zero value has been binned.
  std::span<const uint64_t> Counts() const { return counts_; }
  // calib_bin_edges: Counts().size() + 1 float32 edges, edges[0] == 0 (empty without bins).
  std::span<const float> Edges() const { return edges_; }
  // Exact running max of the finite |x| (the last edge can lie above it after growth).
  float abs_max() const { return abs_max_; }
  // Values binned (plus zeros held before the first non-zero batch).
  uint64_t total() const { return total_; }
  // Zeros held while no range exists yet (all of total() in that state).
  uint64_t pending_zeros() const { return pending_zeros_; }
  // True until a batch has been collected.
  bool empty() const { return total_ == 0 && !collected_; }
  const Options& options() const { return options_; }
  void Reset();

 private:
  // Installs the first range [0, max] with zero counts; pending zeros move to bin 0.
  void StartRange(float max);

  // The mergeable layout (histogram_mergeable.cc). Collect of a batch.
  absl::StatusOr<CollectStats> CollectMergeable(std::span<const float> x);
  // Adds a state with MergeMergeable's rules and errors (state unchanged on error).
  absl::Status AddMergeable(const MergeableState& state);
  absl::Status GrowMergeable(float new_max);
  absl::Status MergeMergeableHistogram(const Histogram& other);

  // Constant after construction.
  Options options_;
  absl::Status options_status_;

  std::vector<uint64_t> counts_;
  std::vector<float> edges_;
  float abs_max_ = 0.0f;
  uint64_t total_ = 0;
  // Zeros seen while the range was still [0, 0]; they go to bin 0 once bins exist (kMergeable:
  // MergeableState::zeros).
  uint64_t pending_zeros_ = 0;
  bool collected_ = false;
  // kMergeable: the exponent k of the bins (edges_ are i * 2^k), 0 without bins.
  int exponent_ = 0;
};

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_HISTOGRAM_H_
