#include "kernels/amax_search_checks.h"

#include "absl/strings/str_cat.h"

namespace qcal::kernels {

absl::Status CheckNotEmpty(std::span<const uint64_t> counts) {
  for (const uint64_t c : counts) {
    if (c != 0) return absl::OkStatus();
  }
  return absl::FailedPreconditionError("the histogram is empty: no values were collected");
}

absl::Status CheckEdges(std::span<const uint64_t> counts, std::span<const float> edges) {
  if (edges.size() != counts.size() + 1) {
    return absl::InvalidArgumentError(absl::StrCat("a histogram of ", counts.size(), " bins needs ",
                                                   counts.size() + 1, " edges, got ",
                                                   edges.size()));
  }
  return absl::OkStatus();
}

absl::Status CheckCandidates(const char* method, int start_bin, int stride, int64_t min_start,
                             int64_t max_start, int64_t num_bins) {
  if (stride < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(method, " search: stride must be >= 1, got ", stride));
  }
  if (start_bin > max_start) {
    return absl::InvalidArgumentError(absl::StrCat(
        method, " search: start_bin ", start_bin, " is beyond the histogram, which has ", num_bins,
        " bins (start_bin must be in [", min_start, ", ", max_start, "])"));
  }
  if (start_bin < min_start) {
    return absl::InvalidArgumentError(
        absl::StrCat(method, " search: start_bin must be >= ", min_start, ", got ", start_bin));
  }
  return absl::OkStatus();
}

absl::Status CheckPercentile(double percentile) {
  if (!(percentile > 0.0 && percentile <= 100.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("percentile must be in (0, 100], got ", percentile));
  }
  return absl::OkStatus();
}

}  // namespace qcal::kernels
