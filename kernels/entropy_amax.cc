// EntropyAmax and KlDivergences of amax_search.h.
//
// The reference builds, for each candidate i, p (the first i bins, everything beyond folded into
// bin i-1) and q (each of nq groups of bins spreads its count evenly over its occupied bins),
// and sums P ln(P/Q). Regrouped over groups with prefix sums this is, with h the counts (h[0] :=
// h[1]), T their total, H the total below i, G_g and n_g a group's count and occupied bins,
// q_g = G_g / n_g, and p_l = h[i-1] + (T - H) the folded last bin:
//   T * D_i = sum_{j < i-1} h_j ln h_j - sum_g G_g ln q_g + h[i-1] ln q_last
//             + p_l ln(p_l / q_last) + T ln(H / T)
// which costs O(nq) per candidate and agrees with the reference to about 1e-12 relative.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "kernels/amax_search.h"
#include "kernels/amax_search_checks.h"
#include "kernels/entropy_prefix.h"
#include "kernels/fast_log.h"
#include "kernels/fp8_search.h"
#include "kernels/parallel.h"
#include "kernels/quant_bound.h"
#include "kernels/search_cancel.h"
#include "kernels/simd.h"

namespace qcal::kernels {
namespace {

using internal::BuildEntropyPrefix;
using Prefix = internal::EntropyPrefix;

// sum_g G_g ln(G_g / n_g) = sum_g G_g (ln G_g - ln n_g) over groups whose boundary prefix
// counts are count_at[0..groups] and whose ln n_g is log_occupied[g] (groups a multiple of 4;
// padding groups have G = 0). Taking ln n_g from a table (n_g is a bin count) leaves one
// division per log. Lane k sums the groups g = k mod 4, then the lanes are added in a fixed
// order.
QCAL_VECTOR_CLONES double GroupEntropyTerms(const double* count_at, const double* log_occupied,
                                            int groups) {
  Double4 acc = {0.0, 0.0, 0.0, 0.0};
  for (int g = 0; g < groups; g += 4) {
    Double4 count_lo, count_hi, log_n;
    std::memcpy(&count_lo, count_at + g, sizeof(Double4));
    std::memcpy(&count_hi, count_at + g + 1, sizeof(Double4));
    std::memcpy(&log_n, log_occupied + g, sizeof(Double4));
    const Double4 total = count_hi - count_lo;
    Double4 log_total = total > 0.0 ? total : 1.0;
    FastLogInPlace(log_total);
    acc += total > 0.0 ? total * (log_total - log_n) : 0.0;
  }
  return (acc[0] + acc[2]) + (acc[1] + acc[3]);
}

struct Candidates {
  int64_t first;
  int64_t stride;
  int64_t count;
};

class KlSearch {
 public:
  KlSearch(std::span<const uint64_t> counts, int shift)
      : counts_(counts),
        prefix_(BuildEntropyPrefix(counts)),
        shift_(shift),
        levels_(int64_t{1} << shift),
        padded_(static_cast<int>((levels_ + 3) / 4 * 4)),
        log_integer_(counts.size() + 1, 0.0) {
    // Only needed where a candidate has more bins than groups (n_g <= bins / groups + 1).
    const size_t needed = std::min(counts.size(), counts.size() / levels_ + 2);
    for (size_t n = 1; n <= needed; ++n) log_integer_[n] = std::log(static_cast<double>(n));
  }

  // Doubles of scratch space Divergence needs.
  size_t ScratchSize() const { return 2 * (static_cast<size_t>(padded_) + 1); }

  // D_i for one candidate; scratch holds ScratchSize() doubles.
  double Divergence(int64_t i, std::vector<double>& scratch) const {
    const int64_t bins = static_cast<int64_t>(counts_.size());
    const double total = prefix_.count[bins];
    const double below = prefix_.count[i];
    if (total == 0.0 || below == 0.0) return std::numeric_limits<double>::quiet_NaN();
    const double last = prefix_.count[i] - prefix_.count[i - 1];
    const double beyond = total - below;
    if (last == 0.0 && beyond > 0.0) return std::numeric_limits<double>::infinity();
    if (levels_ >= i) {
      // Each bin is a group of its own (j -> floor(j * nq / i) is one-to-one), so q = h below
      // the last bin and only the folded last bin diverges.
      const double folded_term =
          last > 0.0 ? (last + beyond) * std::log((last + beyond) / last) : 0.0;
      return folded_term / total + std::log(below / total);
    }

    double* count_at = scratch.data();
    double* log_occupied = count_at + padded_ + 1;
    // Group g covers bins [ceil(g * i / nq), ceil((g + 1) * i / nq)).
    count_at[0] = 0.0;
    int64_t numerator = levels_ - 1;
    int64_t occupied_before = 0;
    for (int64_t g = 1; g <= levels_; ++g) {
      numerator += i;
      const int64_t boundary = numerator >> shift_;
      count_at[g] = prefix_.count[boundary];
      const int64_t occupied = prefix_.occupied[boundary];
      log_occupied[g - 1] = log_integer_[occupied - occupied_before];
      occupied_before = occupied;
    }
    for (int64_t g = levels_ + 1; g <= padded_; ++g) {
      count_at[g] = count_at[levels_];
      log_occupied[g - 1] = 0.0;
    }
    double sum = prefix_.h_log_h[i - 1] - GroupEntropyTerms(count_at, log_occupied, padded_);
    if (last > 0.0) {
      const int64_t g = ((i - 1) << shift_) / i;  // the last bin's group
      const int64_t begin = (g * i + levels_ - 1) >> shift_;
      const int64_t end = ((g + 1) * i + levels_ - 1) >> shift_;
      const double q_last = (count_at[g + 1] - count_at[g]) /
                            static_cast<double>(prefix_.occupied[end] - prefix_.occupied[begin]);
      const double folded = last + beyond;
      sum += last * std::log(q_last) + folded * std::log(folded / q_last);
    }
    return sum / total + std::log(below / total);
  }

 private:
  std::span<const uint64_t> counts_;
  Prefix prefix_;
  int shift_;
  int64_t levels_;
  int padded_;
  // ln n for the occupied-bin count n of a group.
  std::vector<double> log_integer_;
};

absl::StatusOr<Candidates> EntropyCandidates(std::span<const uint64_t> counts,
                                             const SearchOptions& options) {
  absl::StatusOr<float> bound = QuantBound(options.num_bits, options.is_unsigned);
  if (!bound.ok()) return bound.status();
  if (absl::Status s = CheckNotEmpty(counts); !s.ok()) return s;
  const int64_t bins = static_cast<int64_t>(counts.size());
  if (absl::Status s = CheckCandidates("entropy", options.start_bin, options.stride, 1, bins, bins);
      !s.ok()) {
    return s;
  }
  return Candidates{options.start_bin, options.stride,
                    (bins - options.start_bin) / options.stride + 1};
}

}  // namespace

absl::StatusOr<std::vector<double>> KlDivergences(std::span<const uint64_t> counts,
                                                  const SearchOptions& options) {
  if (options.format == QuantFormat::kFp8E4M3) return internal::Fp8KlDivergences(counts, options);
  absl::StatusOr<Candidates> candidates = EntropyCandidates(counts, options);
  if (!candidates.ok()) return candidates.status();
  const int shift = options.num_bits - 1 + (options.is_unsigned ? 1 : 0);
  SearchCancel cancel(options.cancelled);
  if (cancel.Poll()) return SearchCancel::Status("entropy");
  const KlSearch search(counts, shift);
  std::vector<double> divergences(static_cast<size_t>(candidates->count));
  // Each candidate is scored on its own, so the split cannot change a result.
  const int64_t work = candidates->count << shift;
  const int chunks =
      static_cast<int>(std::min<int64_t>(BalancedChunksFor(work, 1 << 16), candidates->count));
  ParallelFor(candidates->count, chunks, [&](int, int64_t begin, int64_t end) {
    SearchCancel::Meter meter(cancel);
    std::vector<double> scratch(search.ScratchSize());
    for (int64_t k = begin; k < end; ++k) {
      divergences[k] = search.Divergence(candidates->first + k * candidates->stride, scratch);
      if (meter.Tick(int64_t{1} << shift)) return;
    }
  });
  if (cancel.cancelled()) return SearchCancel::Status("entropy");
  return divergences;
}

absl::StatusOr<AmaxChoice> EntropyAmax(std::span<const uint64_t> counts,
                                       std::span<const float> edges, const SearchOptions& options) {
  if (absl::Status s = CheckEdges(counts, edges); !s.ok()) return s;
  absl::StatusOr<std::vector<double>> divergences = KlDivergences(counts, options);
  if (!divergences.ok()) return divergences.status();
  // numpy's argmin over the reversed list: the last NaN if there is one, else the last minimum.
  int64_t best = -1;
  for (int64_t k = static_cast<int64_t>(divergences->size()) - 1; k >= 0; --k) {
    if (std::isnan((*divergences)[k])) {
      best = k;
      break;
    }
  }
  if (best < 0) {
    best = static_cast<int64_t>(divergences->size()) - 1;
    for (int64_t k = best - 1; k >= 0; --k) {
      if ((*divergences)[k] < (*divergences)[best]) best = k;
    }
  }
  const int64_t index = options.start_bin + best * options.stride;
  return AmaxChoice{edges[index], index, (*divergences)[best]};
}

}  // namespace qcal::kernels
