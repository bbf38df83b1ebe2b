// PercentileAmax of amax_search.h: numpy's cumsum(hist / total) and searchsorted (left).

#include "absl/status/status.h"
#include "kernels/amax_search.h"
#include "kernels/amax_search_checks.h"
#include "kernels/search_cancel.h"

namespace qcal::kernels {

absl::StatusOr<AmaxChoice> PercentileAmax(std::span<const uint64_t> counts,
                                          std::span<const float> edges, double percentile,
                                          const std::function<bool()>* cancelled) {
  if (absl::Status s = CheckPercentile(percentile); !s.ok()) return s;
  if (absl::Status s = CheckEdges(counts, edges); !s.ok()) return s;
  if (absl::Status s = CheckNotEmpty(counts); !s.ok()) return s;
  SearchCancel cancel(cancelled);
  if (cancel.Poll()) return SearchCancel::Status("percentile");
  double total = 0.0;
  for (const uint64_t c : counts) total += static_cast<double>(c);
  const double target = percentile / 100.0;
  double cdf = 0.0;
  constexpr size_t kPollBins = size_t{1} << 16;  // well under a millisecond
  for (size_t i = 0; i < counts.size(); ++i) {
    if (i % kPollBins == kPollBins - 1 && cancel.Poll()) return SearchCancel::Status("percentile");
    cdf += static_cast<double>(counts[i]) / total;
    if (cdf >= target) return AmaxChoice{edges[i], static_cast<int64_t>(i), cdf};
  }
  // Rounding can leave the last cdf value below 1 (numpy then returns len(cdf)).
  return AmaxChoice{edges[counts.size()], static_cast<int64_t>(counts.size()), cdf};
}

}  // namespace qcal::kernels
