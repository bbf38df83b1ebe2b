#include "kernels/histogram_growth.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/histogram_edges.h"

namespace qcal::kernels {
namespace {

// Any merge factor at or above the bin count sums every count into bin 0, so the factor handed
// back stops at 2^62 (bins <= 2^24) while the width keeps doubling up to float32's range.
constexpr int kMaxMergeLog2 = 62;
constexpr int kMaxWidthLog2 = 300;  // more than float32's 2^277 span from the least subnormal

}  // namespace

std::vector<float> CoarseEdges(float width, int64_t bins) {
  std::vector<float> edges = ArangeEdges(width, bins + 1);
  // Only the top edges can pass FLT_MAX (the ones below lie under the max, which is finite).
  for (auto it = edges.rbegin(); it != edges.rend() && !std::isfinite(*it); ++it) {
    *it = std::numeric_limits<float>::max();
  }
  return edges;
}

absl::StatusOr<HistogramGrowth> PlanGrowth(std::span<const float> edges, float new_max,
                                           int64_t max_bins, int64_t coarse_bins) {
  const int64_t bins = static_cast<int64_t>(edges.size()) - 1;
  // The reference: width = edges[1] - edges[0]; num_bins = ceil(max / width) (float32 quotient);
  // edges = torch.arange(0, max + width, width), whose length is ceil(double(max + width) /
  // double(width)). The edge count decides the bins (see histogram.h).
  const float width = edges[1] - edges[0];
  const float end = new_max + width;
  // Never fewer bins than now (only conceivable through rounding).
  const double edge_count =
      std::max(std::ceil(static_cast<double>(end) / static_cast<double>(width)),
               static_cast<double>(bins + 1));
  if (std::isfinite(end) && edge_count - 1 <= static_cast<double>(max_bins)) {
    return HistogramGrowth{.merge = 1,
                           .edges = ArangeEdges(width, static_cast<int64_t>(edge_count))};
  }
  // qcal's coarsening (histogram_growth.h), down to coarse_bins. The arithmetic is in double,
  // where max + width cannot overflow: ceil(max / width') bins put the last edge at or above the
  // max.
  for (int log2 = 0; log2 <= kMaxWidthLog2; ++log2) {
    const int64_t merge = int64_t{1} << std::min(log2, kMaxMergeLog2);
    const float coarse = std::ldexp(width, log2);  // exact: a power-of-two multiple
    if (!std::isfinite(coarse)) break;
    const double merged = static_cast<double>((bins + merge - 1) / merge);
    const double grown =
        std::max(std::ceil(static_cast<double>(new_max) / static_cast<double>(coarse)), merged);
    if (grown > static_cast<double>(coarse_bins)) continue;
    std::vector<float> grown_edges = CoarseEdges(coarse, static_cast<int64_t>(grown));
    if (grown_edges.back() < new_max) {
      // The double quotient rounded down onto an integer: one bin more, where it fits.
      if (grown + 1 > static_cast<double>(coarse_bins)) continue;
      grown_edges = CoarseEdges(coarse, static_cast<int64_t>(grown) + 1);
    }
    return HistogramGrowth{.merge = merge, .edges = std::move(grown_edges)};
  }
  return absl::OutOfRangeError(
      absl::StrCat("max |x| = ", new_max, " cannot be covered by ", coarse_bins,
                   " bins of a width float32 can hold (width ", width, ")"));
}

std::vector<uint64_t> MergeAdjacentBins(std::span<const uint64_t> counts, int64_t merge) {
  const size_t step = static_cast<size_t>(merge);
  std::vector<uint64_t> merged((counts.size() + step - 1) / step, 0);
  for (size_t b = 0; b < counts.size(); ++b) merged[b / step] += counts[b];
  return merged;
}

}  // namespace qcal::kernels
