// PercentileAmax of amax_search.h: numpy's cumsum(hist / total) and searchsorted (left).

#include "absl/status/status.h"
#include "kernels/amax_search.h"
#include "kernels/amax_search_checks.h"

namespace qcal::kernels {

absl::StatusOr<AmaxChoice> PercentileAmax(std::span<const uint64_t> counts,
                                          std::span<const float> edges, double percentile) {
  if (absl::Status s = CheckPercentile(percentile); !s.ok()) return s;
  if (absl::Status s = CheckEdges(counts, edges); !s.ok()) return s;
  if (absl::Status s = CheckNotEmpty(counts); !s.ok()) return s;
  double total = 0.0;
  for (const uint64_t c : counts) total += static_cast<double>(c);
  const double target = percentile / 100.0;
  double cdf = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    cdf += static_cast<double>(counts[i]) / total;
    if (cdf >= target) return AmaxChoice{edges[i], static_cast<int64_t>(i), cdf};
  }
  // Rounding can leave the last cdf value below 1 (numpy then returns len(cdf)).
  return AmaxChoice{edges[counts.size()], static_cast<int64_t>(counts.size()), cdf};
}

}  // namespace qcal::kernels
