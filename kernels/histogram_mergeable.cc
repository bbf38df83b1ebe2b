// kernels::Histogram in the mergeable layout (mergeable_histogram.h): the members hold the
// canonical MergeableState (counts_, exponent_, abs_max_, pending_zeros_ as `zeros`), edges_ its
// MergeableEdges, total_ its total().
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/histogram.h"
#include "kernels/mergeable_histogram.h"

namespace qcal::kernels {

absl::StatusOr<CollectStats> Histogram::CollectMergeable(std::span<const float> x) {
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
