// Argument checks shared by the amax searches (amax_search.h), so that every search refuses the
// same input with the same message.
#ifndef QCAL_KERNELS_AMAX_SEARCH_CHECKS_H_
#define QCAL_KERNELS_AMAX_SEARCH_CHECKS_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"

namespace qcal::kernels {

// FAILED_PRECONDITION when there is nothing to search (no bins or every count 0).
absl::Status CheckNotEmpty(std::span<const uint64_t> counts);

// INVALID_ARGUMENT unless edges.size() == counts.size() + 1.
absl::Status CheckEdges(std::span<const uint64_t> counts, std::span<const float> edges);

// INVALID_ARGUMENT unless stride >= 1 and min_start <= start_bin <= max_start, where max_start
// is the last candidate the `method` has on `num_bins` bins.
absl::Status CheckCandidates(const char* method, int start_bin, int stride, int64_t min_start,
                             int64_t max_start, int64_t num_bins);

// INVALID_ARGUMENT unless 0 < percentile <= 100.
absl::Status CheckPercentile(double percentile);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_AMAX_SEARCH_CHECKS_H_
