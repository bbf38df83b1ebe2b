#include "kernels/histogram.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/finite_abs_max.h"
#include "kernels/histogram_binning.h"
#include "kernels/histogram_edges.h"

namespace qcal::kernels {
namespace {

void AddInto(std::vector<uint64_t>& into, std::span<const uint64_t> counts) {
  for (size_t b = 0; b < counts.size(); ++b) into[b] += counts[b];
}

}  // namespace

absl::Status Histogram::ValidateOptions(const Options& options) {
  if (options.axis.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram calibration is per-tensor only; axis ", *options.axis,
                     " was given (per-channel histograms are not supported)"));
  }
  if (options.max_bins < 1 || options.max_bins > kMaxBinsLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_bins ", options.max_bins, " is outside [1, ", kMaxBinsLimit, "]"));
  }
  if (options.num_bins < 1 || options.num_bins > options.max_bins) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_bins ", options.num_bins, " is outside [1, max_bins = ", options.max_bins, "]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Histogram> Histogram::Create(Options options) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  return Histogram(std::move(options));
}

Histogram::Histogram(Options options)
    : options_(std::move(options)), options_status_(ValidateOptions(options_)) {}

void Histogram::Reset() {
  counts_.clear();
  edges_.clear();
  abs_max_ = 0.0f;
  total_ = 0;
  pending_zeros_ = 0;
  collected_ = false;
}

absl::StatusOr<std::vector<float>> Histogram::GrownEdges(float new_max) const {
  // The reference: width = edges[1] - edges[0]; num_bins = ceil(max / width) (float32 quotient);
  // edges = torch.arange(0, max + width, width), whose length is ceil(double(max + width) /
  // double(width)). The edge count decides the bins (see the header).
  const float width = edges_[1] - edges_[0];
  const float end = new_max + width;
  // Never fewer bins than now (only conceivable through rounding at the max_bins limit).
  const double edge_count =
      std::max(std::ceil(static_cast<double>(end) / static_cast<double>(width)),
               static_cast<double>(counts_.size() + 1));
  if (!(edge_count - 1 <= static_cast<double>(options_.max_bins))) {
    return absl::ResourceExhaustedError(
        absl::StrCat("max |x| = ", new_max, " would grow the histogram to ", edge_count - 1,
                     " bins of width ", width, ", beyond max_bins = ", options_.max_bins));
  }
  return ArangeEdges(width, static_cast<int64_t>(edge_count));
}

void Histogram::StartRange(float max) {
  edges_ = LinspaceEdges(max, options_.num_bins);
  counts_.assign(static_cast<size_t>(options_.num_bins), 0);
  counts_[0] += pending_zeros_;  // zeros land in bin 0 whatever the range
  pending_zeros_ = 0;
}

absl::StatusOr<CollectStats> Histogram::Collect(std::span<const float> x) {
  if (!options_status_.ok()) return options_status_;
  if (x.empty()) return absl::InvalidArgumentError("empty batch: a histogram needs values");
  CollectStats stats;
  stats.elements = static_cast<int64_t>(x.size());

  if (!counts_.empty()) {
    // Hot path: most batches lie inside the current range, so bin them against it right away
    // and find their max in the same pass; only a batch beyond the last edge is binned again.
    BinnedBatch batch =
        BinAbsValues(x, edges_.back(), static_cast<int64_t>(counts_.size()), options_.skip_zeros);
    stats.nonfinite = batch.nonfinite;
    if (batch.abs_max > edges_.back()) {
      absl::StatusOr<std::vector<float>> grown = GrownEdges(batch.abs_max);
      if (!grown.ok()) return grown.status();
      const int64_t bins = static_cast<int64_t>(grown->size()) - 1;
      batch = BinAbsValues(x, grown->back(), bins, options_.skip_zeros);
      AddInto(batch.counts, counts_);
      counts_ = std::move(batch.counts);
      edges_ = *std::move(grown);
    } else {
      AddInto(counts_, batch.counts);
    }
    total_ += batch.binned;
    abs_max_ = std::max(abs_max_, batch.abs_max);
    collected_ = true;
    return stats;
  }

  const FiniteAbsMaxResult range = FiniteAbsMax(x);
  stats.nonfinite = range.nonfinite;
  if (range.abs_max == 0.0f) {
    // Only zeros (and non-finite values): no range to bin against yet.
    if (!options_.skip_zeros) {
      const uint64_t zeros = static_cast<uint64_t>(stats.elements - stats.nonfinite);
      pending_zeros_ += zeros;
      total_ += zeros;
    }
    collected_ = true;
    return stats;
  }
  // The first batch is binned against its own max (torch.histc's max argument), not the last
  // edge, which linspace may round.
  BinnedBatch batch = BinAbsValues(x, range.abs_max, options_.num_bins, options_.skip_zeros);
  StartRange(range.abs_max);
  AddInto(counts_, batch.counts);
  total_ += batch.binned;
  abs_max_ = range.abs_max;
  collected_ = true;
  return stats;
}

absl::Status Histogram::Grow(float new_max) {
  if (!options_status_.ok()) return options_status_;
  if (!std::isfinite(new_max) || new_max < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram range must grow to a finite max >= 0, got ", new_max));
  }
  if (counts_.empty()) {
    if (new_max > 0.0f) StartRange(new_max);
    return absl::OkStatus();
  }
  if (new_max <= edges_.back()) return absl::OkStatus();
  absl::StatusOr<std::vector<float>> grown = GrownEdges(new_max);
  if (!grown.ok()) return grown.status();
  edges_ = *std::move(grown);
  counts_.resize(edges_.size() - 1, 0);
  return absl::OkStatus();
}

absl::Status Histogram::Merge(const Histogram& other) {
  if (!options_status_.ok()) return options_status_;
  if (&other == this) {
    const Histogram copy = other;
    return Merge(copy);
  }
  if (!counts_.empty() && !other.counts_.empty()) {
    if (edges_[1] != other.edges_[1]) {
      return absl::FailedPreconditionError(
          absl::StrCat("histograms with different bin widths cannot be merged: ", edges_[1], " vs ",
                       other.edges_[1]));
    }
    if (other.counts_.size() > counts_.size()) {
      if (static_cast<int64_t>(other.counts_.size()) > options_.max_bins) {
        return absl::ResourceExhaustedError(
            absl::StrCat("merged histogram would have ", other.counts_.size(),
                         " bins, beyond max_bins = ", options_.max_bins));
      }
      counts_.resize(other.counts_.size(), 0);
      edges_ = other.edges_;
    }
    AddInto(counts_, other.counts_);
  } else if (!other.counts_.empty()) {
    if (static_cast<int64_t>(other.counts_.size()) > options_.max_bins) {
      return absl::ResourceExhaustedError(
          absl::StrCat("merged histogram would have ", other.counts_.size(),
                       " bins, beyond max_bins = ", options_.max_bins));
    }
    const uint64_t zeros = pending_zeros_;
    counts_ = other.counts_;
    edges_ = other.edges_;
    counts_[0] += zeros;
    pending_zeros_ = 0;
  } else if (!counts_.empty()) {
    counts_[0] += other.pending_zeros_;
  } else {
    pending_zeros_ += other.pending_zeros_;
  }
  total_ += other.total_;
  abs_max_ = std::max(abs_max_, other.abs_max_);
  collected_ = collected_ || other.collected_;
  return absl::OkStatus();
}

}  // namespace qcal::kernels
