// kernels::Histogram in the mergeable layout (mergeable_histogram.h): the members hold the
// canonical MergeableState (counts_, exponent_, abs_max_, pending_zeros_ as `zeros`), edges_ its
// MergeableEdges, total_ its total().
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/histogram.h"
#include "kernels/mergeable_binning.h"
#include "kernels/mergeable_histogram.h"

namespace qcal::kernels {

absl::StatusOr<CollectStats> Histogram::CollectMergeable(std::span<const float> x) {
  if (!counts_.empty()) {
    // Hot path: most batches keep the exponent, so bin them at it right away and find their max
    // in the same pass (room for every bin of this exponent: 2 * num_bins); only a batch whose
    // max raises the exponent is counted again (a max pass, then bins at its own exponent).
    const int64_t room = 2 * static_cast<int64_t>(options_.num_bins);
    MergeableBinned batch = BinMergeable(x, exponent_, room);
    const float abs_max = std::max(abs_max_, batch.abs_max);
    if (MergeableExponent(abs_max, options_.num_bins) == exponent_) {
      uint64_t binned = 0;
      for (const uint64_t c : batch.counts) binned += c;
      const uint64_t zeros = batch.finite - binned;
      const uint64_t added = options_.skip_zeros ? binned : batch.finite;
      uint64_t total = 0;
      if (__builtin_add_overflow(total_, added, &total)) {
        return absl::OutOfRangeError(
            "mergeable histogram: merged counts would pass 2^64 - 1 values; nothing was merged");
      }
      const size_t bins = static_cast<size_t>(MergeableBinCount(abs_max, exponent_));
      if (bins != counts_.size()) {
        counts_.resize(bins, 0);
        edges_ = MergeableEdges(exponent_, static_cast<int64_t>(bins));
      }
      for (size_t b = 0; b < bins; ++b) counts_[b] += batch.counts[b];
      if (!options_.skip_zeros) counts_[0] += zeros;
      abs_max_ = abs_max;
      total_ = total;
      collected_ = true;
      return CollectStats{.elements = static_cast<int64_t>(x.size()),
                          .nonfinite = static_cast<int64_t>(x.size() - batch.finite)};
    }
  }
  absl::StatusOr<MergeableBatch> batch =
      CountMergeable(x, {.num_bins = options_.num_bins, .skip_zeros = options_.skip_zeros});
  if (!batch.ok()) return batch.status();
  if (absl::Status status = AddMergeable(batch->state); !status.ok()) return status;
  collected_ = true;
  return batch->stats;
}

absl::Status Histogram::AddMergeable(const MergeableState& other) {
  MergeableState state{.exponent = exponent_,
                       .counts = std::move(counts_),
                       .abs_max = abs_max_,
                       .zeros = pending_zeros_};
  const size_t bins = state.counts.size();
  const absl::Status status = kernels::MergeMergeable(state, other, options_.num_bins);
  counts_ = std::move(state.counts);  // unchanged on error
  if (!status.ok()) return status;
  if (state.exponent != exponent_ || counts_.size() != bins) {
    edges_ = counts_.empty() ? std::vector<float>{}
                             : MergeableEdges(state.exponent, static_cast<int64_t>(counts_.size()));
  }
  exponent_ = state.exponent;
  abs_max_ = state.abs_max;
  pending_zeros_ = state.zeros;
  total_ += other.total();  // MergeMergeable checked that the sum fits
  return absl::OkStatus();
}

absl::Status Histogram::GrowMergeable(float new_max) {
  if (new_max == 0.0f || (!edges_.empty() && new_max <= edges_.back())) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "a mergeable histogram's range follows the values counted and cannot be grown ahead of "
      "them (to ",
      new_max, ")"));
}

absl::Status Histogram::MergeMergeableHistogram(const Histogram& other) {
  if (options_.num_bins != other.options_.num_bins) {
    return absl::FailedPreconditionError(absl::StrCat(
        "mergeable histograms of different num_bins cannot be merged: ", options_.num_bins, " vs ",
        other.options_.num_bins));
  }
  absl::StatusOr<MergeableState> state = other.ExportMergeable();
  if (!state.ok()) return state.status();
  if (absl::Status status = AddMergeable(*state); !status.ok()) return status;
  collected_ = collected_ || other.collected_;
  return absl::OkStatus();
}

absl::StatusOr<MergeableState> Histogram::ExportMergeable() const {
  if (options_.layout != HistogramLayout::kMergeable) {
    return absl::FailedPreconditionError(
        "ExportMergeable: the histogram is in the reference layout, not the mergeable one");
  }
  return MergeableState{
      .exponent = exponent_, .counts = counts_, .abs_max = abs_max_, .zeros = pending_zeros_};
}

absl::Status Histogram::MergeMergeable(const MergeableState& state) {
  if (!options_status_.ok()) return options_status_;
  if (options_.layout != HistogramLayout::kMergeable) {
    return absl::FailedPreconditionError(
        "a mergeable histogram state cannot be merged into a histogram in the reference layout");
  }
  if (absl::Status status = AddMergeable(state); !status.ok()) return status;
  collected_ = true;
  return absl::OkStatus();
}

}  // namespace qcal::kernels
