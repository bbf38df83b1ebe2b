// The mergeable layout's rule, its canonical form and exact merging (CountMergeable, the binning
// pass, lives in mergeable_count.cc).
#include "kernels/mergeable_histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/histogram.h"

namespace qcal::kernels {
namespace {

// Sum of counts, or false when it passes 2^64 - 1.
bool CheckedSum(std::span<const uint64_t> counts, uint64_t start, uint64_t& sum) {
  sum = start;
  for (const uint64_t c : counts) {
    if (__builtin_add_overflow(sum, c, &sum)) return false;
  }
  return true;
}

// Adds counts binned at `from_exponent` into `into` binned at `to_exponent` >= from_exponent:
// bin i lies inside bin i >> (to - from) (exact; a shift past the bin count sends all to bin 0).
void AddCoarsened(std::vector<uint64_t>& into, std::span<const uint64_t> counts, int from_exponent,
                  int to_exponent) {
  const int shift = to_exponent - from_exponent;
  if (shift == 0) {
    for (size_t b = 0; b < counts.size(); ++b) into[b] += counts[b];
  } else if (shift >= 62) {
    for (const uint64_t c : counts) into[0] += c;
  } else {
    for (size_t b = 0; b < counts.size(); ++b) into[b >> shift] += counts[b];
  }
}

absl::Status CheckNumBins(int64_t num_bins) {
  if (num_bins < 1 || num_bins > Histogram::kMaxBinsLimit) {
    return absl::InvalidArgumentError(absl::StrCat("mergeable histogram: num_bins ", num_bins,
                                                   " is outside [1, ", Histogram::kMaxBinsLimit,
                                                   "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view HistogramLayoutName(HistogramLayout layout) {
  switch (layout) {
    case HistogramLayout::kReference:
      return "reference";
    case HistogramLayout::kMergeable:
      return "mergeable";
  }
  return "unknown";
}

uint64_t MergeableState::total() const {
  uint64_t sum = 0;
  for (const uint64_t c : counts) sum += c;
  return sum + zeros;
}

int MergeableExponent(float abs_max, int64_t num_bins) {
  // floor(m / 2^k) + 1 <= 2n  <=>  m / 2^k < 2n (both sides of the floor are integers), and
  // m / 2^k is exact in double for every float32 m and k in range. Start from the k that ilogb
  // suggests and step to the smallest one that holds.
  const double m = abs_max;
  const double limit = 2.0 * static_cast<double>(num_bins);
  int k = std::ilogb(m) - std::ilogb(limit);
  k = std::clamp(k, kMinMergeableExponent, kMaxMergeableExponent);
  while (k < kMaxMergeableExponent && std::ldexp(m, -k) >= limit) ++k;
  while (k > kMinMergeableExponent && std::ldexp(m, -(k - 1)) < limit) --k;
  return k;
}

int64_t MergeableBinCount(float abs_max, int exponent) {
  return static_cast<int64_t>(std::floor(std::ldexp(static_cast<double>(abs_max), -exponent))) + 1;
}

std::vector<float> MergeableEdges(int exponent, int64_t bins) {
  std::vector<float> edges(static_cast<size_t>(bins + 1));
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  for (int64_t i = 0; i <= bins; ++i) {
    // Exact in double; exact in float32 too while i <= 2^24 (beyond it, with num_bins > 2^23,
    // i * 2^k rounds to the nearest float32).
    const double edge = std::ldexp(static_cast<double>(i), exponent);
    edges[static_cast<size_t>(i)] =
        edge > kFloatMax ? std::numeric_limits<float>::max() : static_cast<float>(edge);
  }
  return edges;
}

absl::Status ValidateMergeableState(const MergeableState& state, int64_t num_bins) {
  if (absl::Status status = CheckNumBins(num_bins); !status.ok()) return status;
  if (!std::isfinite(state.abs_max) || state.abs_max < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("mergeable histogram: abs_max ", state.abs_max, " must be finite and >= 0"));
  }
  if (state.abs_max == 0.0f) {
    if (!state.counts.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("mergeable histogram: counts has ", state.counts.size(),
                       " bins, should have 0 when abs_max is 0 (zeros go in `zeros`)"));
    }
    if (state.exponent != 0) {
      return absl::InvalidArgumentError(absl::StrCat("mergeable histogram: exponent ",
                                                     state.exponent,
                                                     " should be 0 without bins (abs_max 0)"));
    }
    return absl::OkStatus();
  }
  const int exponent = MergeableExponent(state.abs_max, num_bins);
  if (state.exponent != exponent) {
    return absl::InvalidArgumentError(absl::StrCat("mergeable histogram: exponent ", state.exponent,
                                                   " should be ", exponent, " for abs_max ",
                                                   state.abs_max, " and num_bins ", num_bins));
  }
  const int64_t bins = MergeableBinCount(state.abs_max, exponent);
  if (static_cast<int64_t>(state.counts.size()) != bins) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mergeable histogram: counts has ", state.counts.size(), " bins, should have ", bins,
        " (floor(abs_max / 2^", exponent, ") + 1 for abs_max ", state.abs_max, ")"));
  }
  if (state.counts.back() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("mergeable histogram: the last count (bin ",
                                                   bins - 1, ") is 0, should be >= 1 (abs_max ",
                                                   state.abs_max, " lies in it)"));
  }
  if (state.zeros != 0) {
    return absl::InvalidArgumentError(absl::StrCat("mergeable histogram: zeros ", state.zeros,
                                                   " should be 0 beside bins (zeros are counted "
                                                   "in bin 0 once abs_max > 0)"));
  }
  return absl::OkStatus();
}

std::vector<uint64_t> CoarsenMergeableCounts(const MergeableState& state, int exponent,
                                             int64_t bins) {
  std::vector<uint64_t> counts(static_cast<size_t>(bins), 0);
  if (state.counts.empty()) {
    if (bins > 0) counts[0] = state.zeros;
    return counts;
  }
  AddCoarsened(counts, state.counts, state.exponent, exponent);
  return counts;
}

absl::Status MergeMergeable(MergeableState& state, const MergeableState& other, int64_t num_bins) {
  if (absl::Status status = ValidateMergeableState(state, num_bins); !status.ok()) return status;
  if (absl::Status status = ValidateMergeableState(other, num_bins); !status.ok()) return status;
  // Any single count is at most the merged total, so checking the total covers every bin.
  uint64_t mine = 0;
  uint64_t theirs = 0;
  uint64_t merged = 0;
  if (!CheckedSum(state.counts, state.zeros, mine) ||
      !CheckedSum(other.counts, other.zeros, theirs) ||
      __builtin_add_overflow(mine, theirs, &merged)) {
    return absl::OutOfRangeError(
        "mergeable histogram: merged counts would pass 2^64 - 1 values; nothing was merged");
  }
  if (other.abs_max == 0.0f) {
    (state.counts.empty() ? state.zeros : state.counts[0]) += other.zeros;
    return absl::OkStatus();
  }
  if (state.abs_max == 0.0f) {
    const uint64_t zeros = state.zeros;
    state = other;
    state.counts[0] += zeros;
    return absl::OkStatus();
  }
  const float abs_max = std::max(state.abs_max, other.abs_max);
  const int exponent = MergeableExponent(abs_max, num_bins);
  const int64_t bins = MergeableBinCount(abs_max, exponent);
  if (exponent != state.exponent) {
    state.counts = CoarsenMergeableCounts(state, exponent, bins);
  } else {
    state.counts.resize(static_cast<size_t>(bins), 0);
  }
  AddCoarsened(state.counts, other.counts, other.exponent, exponent);
  state.exponent = exponent;
  state.abs_max = abs_max;
  return absl::OkStatus();
}

}  // namespace qcal::kernels
