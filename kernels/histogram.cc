#include "kernels/histogram.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/finite_abs_max.h"
#include "kernels/histogram_binning.h"
#include "kernels/histogram_edges.h"
#include "kernels/histogram_growth.h"

namespace qcal::kernels {
namespace {

void AddInto(std::vector<uint64_t>& into, std::span<const uint64_t> counts) {
  for (size_t b = 0; b < counts.size(); ++b) into[b] += counts[b];
}

// Merge coarsens by at most 2^30 to match widths (and by 2^24 more for num_bins): an int64.
constexpr int kMaxMergeLog2 = 30;

}  // namespace

absl::Status Histogram::ValidateOptions(const Options& options) {
  if (options.axis.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram calibration is per-tensor only; axis ", *options.axis,
                     " was given (per-channel histograms are not supported)"));
  }
  const int64_t limit = options.bin_limit();
  if (limit < 1 || limit > kMaxBinsLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_bins ", limit, " is outside [1, ", kMaxBinsLimit, "]"));
  }
  if (options.num_bins < 1 || options.num_bins > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_bins ", options.num_bins, " is outside [1, max_bins = ", limit, "]"));
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
  exponent_ = 0;
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
  if (options_.layout == HistogramLayout::kMergeable) return CollectMergeable(x);
  CollectStats stats;
  stats.elements = static_cast<int64_t>(x.size());

  if (!counts_.empty()) {
    // Hot path: most batches lie inside the current range, so bin them against it right away
    // and find their max in the same pass; only a batch beyond the last edge is binned again.
    BinnedBatch batch =
        BinAbsValues(x, edges_.back(), static_cast<int64_t>(counts_.size()), options_.skip_zeros);
    stats.nonfinite = batch.nonfinite;
    if (batch.abs_max > edges_.back()) {
      absl::StatusOr<HistogramGrowth> grown =
          PlanGrowth(edges_, batch.abs_max, options_.bin_limit(), options_.num_bins);
      if (!grown.ok()) return grown.status();
      const int64_t bins = static_cast<int64_t>(grown->edges.size()) - 1;
      batch = BinAbsValues(x, grown->edges.back(), bins, options_.skip_zeros);
      if (grown->merge == 1) {
        AddInto(batch.counts, counts_);
      } else {
        AddInto(batch.counts, MergeAdjacentBins(counts_, grown->merge));
      }
      counts_ = std::move(batch.counts);
      edges_ = std::move(grown->edges);
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
  if (options_.layout == HistogramLayout::kMergeable) return GrowMergeable(new_max);
  if (counts_.empty()) {
    if (new_max > 0.0f) StartRange(new_max);
    return absl::OkStatus();
  }
  if (new_max <= edges_.back()) return absl::OkStatus();
  absl::StatusOr<HistogramGrowth> grown =
      PlanGrowth(edges_, new_max, options_.bin_limit(), options_.num_bins);
  if (!grown.ok()) return grown.status();
  if (grown->merge > 1) counts_ = MergeAdjacentBins(counts_, grown->merge);
  edges_ = std::move(grown->edges);
  counts_.resize(edges_.size() - 1, 0);
  return absl::OkStatus();
}

absl::Status Histogram::Merge(const Histogram& other) {
  if (!options_status_.ok()) return options_status_;
  if (&other == this) {
    const Histogram copy = other;
    return Merge(copy);
  }
  if (options_.layout != other.options_.layout) {
    return absl::FailedPreconditionError(absl::StrCat(
        "histograms of different layouts cannot be merged: ", HistogramLayoutName(options_.layout),
        " vs ", HistogramLayoutName(other.options_.layout)));
  }
  if (options_.layout == HistogramLayout::kMergeable) return MergeMergeableHistogram(other);
  if (other.counts_.empty()) {
    if (counts_.empty()) {
      pending_zeros_ += other.pending_zeros_;
    } else {
      counts_[0] += other.pending_zeros_;
    }
  } else {
    // Bring both to one width (a histogram coarsened by growth has a power-of-two multiple of
    // the width it started with); a result past max_bins is coarsened further, as growth is,
    // to at most num_bins bins (histogram_growth.h says why).
    int64_t mine = 1;
    int64_t theirs = 1;
    if (!counts_.empty() && edges_[1] != other.edges_[1]) {
      const float fine = std::min(edges_[1], other.edges_[1]);
      const float coarse = std::max(edges_[1], other.edges_[1]);
      int exponent = 0;
      const float mantissa = std::frexp(coarse / fine, &exponent);
      if (mantissa != 0.5f || exponent - 1 > kMaxMergeLog2 ||
          std::ldexp(fine, exponent - 1) != coarse) {
        return absl::FailedPreconditionError(absl::StrCat(
            "histograms whose bin widths are not a power-of-two multiple of each other cannot be "
            "merged: ",
            edges_[1], " vs ", other.edges_[1]));
      }
      (edges_[1] < other.edges_[1] ? mine : theirs) = int64_t{1} << (exponent - 1);
    }
    const auto bins_after = [&] {
      const int64_t a = static_cast<int64_t>(counts_.size());
      const int64_t b = static_cast<int64_t>(other.counts_.size());
      return std::max((a + mine - 1) / mine, (b + theirs - 1) / theirs);
    };
    if (bins_after() > options_.bin_limit()) {
      while (bins_after() > options_.num_bins) {
        mine *= 2;
        theirs *= 2;
      }
    }
    const int64_t bins = bins_after();
    std::vector<float> edges;
    if (!counts_.empty() && mine == 1 && bins == static_cast<int64_t>(counts_.size())) {
      edges = edges_;
    } else if (theirs == 1 && bins == static_cast<int64_t>(other.counts_.size())) {
      edges = other.edges_;
    } else {
      const float width = counts_.empty() ? other.edges_[1] * static_cast<float>(theirs)
                                          : edges_[1] * static_cast<float>(mine);
      if (!std::isfinite(width)) {
        return absl::OutOfRangeError(absl::StrCat(
            "merged histogram cannot fit num_bins = ", options_.num_bins, " with a float32 width"));
      }
      edges = CoarseEdges(width, bins);
    }
    std::vector<uint64_t> counts = MergeAdjacentBins(counts_, mine);
    counts.resize(static_cast<size_t>(bins), 0);
    AddInto(counts, theirs == 1 ? other.counts_ : MergeAdjacentBins(other.counts_, theirs));
    counts[0] += pending_zeros_;
    pending_zeros_ = 0;
    counts_ = std::move(counts);
    edges_ = std::move(edges);
  }
  total_ += other.total_;
  abs_max_ = std::max(abs_max_, other.abs_max_);
  collected_ = collected_ || other.collected_;
  return absl::OkStatus();
}

}  // namespace qcal::kernels
