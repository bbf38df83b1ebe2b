// Fp8KlDivergences of fp8_search.h: the entropy search with E4M3's quantization groups.
//
// With h the counts (h[0] := h[1]), T their total, H the total below candidate i, G_g and n_g a
// group's count and occupied bins, q_g = G_g / n_g, and p_l = h[i-1] + (T - H) the folded last
// bin, the divergence regroups (as entropy_amax.cc's) into
//   T * D_i = sum_{j < i-1} h_j ln h_j - sum_g G_g ln q_g + h[i-1] ln q_last
//             + p_l ln(p_l / q_last) + T ln(H / T)
// so a candidate costs its groups, each found from a guess (fp8_runs.h).
#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "kernels/amax_search_checks.h"
#include "kernels/entropy_prefix.h"
#include "kernels/fp8_e4m3.h"
#include "kernels/fp8_runs.h"
#include "kernels/fp8_search.h"
#include "kernels/parallel.h"
#include "kernels/search_cancel.h"

namespace qcal::kernels::internal {
namespace {

using Prefix = EntropyPrefix;

// The E4M3 value bin j's center maps to under candidate edge i (fp8_search.h).
float Code(int64_t j, int64_t i) {
  return RoundToFp8E4M3(
      static_cast<float>((static_cast<double>(j) + 0.5) * kFp8E4M3Max / static_cast<double>(i)));
}

// D_i and, in *groups, how many groups it took.
double Divergence(const Prefix& prefix, int64_t bins, int64_t i, int64_t* groups) {
  *groups = 0;
  const double total = prefix.count[bins];
  const double below = prefix.count[i];
  if (total == 0.0 || below == 0.0) return std::numeric_limits<double>::quiet_NaN();
  const double last = prefix.count[i] - prefix.count[i - 1];
  const double beyond = total - below;
  if (last == 0.0 && beyond > 0.0) return std::numeric_limits<double>::infinity();
  double group_sum = 0.0;
  double q_last = 0.0;
  for (int64_t begin = 0; begin < i;) {
    const float code = Code(begin, i);
    // Bin j's center sits at (j + 0.5) 448 / i: the run probably ends past the midpoint above.
    const double guess = Fp8UpperMidpoint(code) * static_cast<double>(i) / kFp8E4M3Max - 0.5;
    const int64_t lo =
        Fp8RunEnd(begin, i, code, std::ceil(guess), [i](int64_t j) { return Code(j, i); });
    const double count = prefix.count[lo] - prefix.count[begin];
    const int64_t occupied = prefix.occupied[lo] - prefix.occupied[begin];
    if (count > 0.0) {
      const double q = count / static_cast<double>(occupied);
      group_sum += count * std::log(q);
      if (lo == i) q_last = q;
    }
    ++*groups;
    begin = lo;
  }
  double sum = prefix.h_log_h[i - 1] - group_sum;
  if (last > 0.0) {
    const double folded = last + beyond;
    sum += last * std::log(q_last) + folded * std::log(folded / q_last);
  }
  return sum / total + std::log(below / total);
}

}  // namespace

absl::StatusOr<std::vector<double>> Fp8KlDivergences(std::span<const uint64_t> counts,
                                                     const SearchOptions& options) {
  if (absl::Status s = CheckNotEmpty(counts); !s.ok()) return s;
  const int64_t bins = static_cast<int64_t>(counts.size());
  if (absl::Status s = CheckCandidates("entropy", options.start_bin, options.stride, 1, bins, bins);
      !s.ok()) {
    return s;
  }
  SearchCancel cancel(options.cancelled);
  if (cancel.Poll()) return SearchCancel::Status("entropy");
  const Prefix prefix = BuildEntropyPrefix(counts);
  const int64_t candidates = (bins - options.start_bin) / options.stride + 1;
  std::vector<double> divergences(static_cast<size_t>(candidates));
  // Each candidate is scored on its own, so the split cannot change a result.
  const int chunks = static_cast<int>(
      std::min<int64_t>(BalancedChunksFor(candidates * 1024, 1 << 16), candidates));
  ParallelFor(candidates, chunks, [&](int, int64_t begin, int64_t end) {
    SearchCancel::Meter meter(cancel);
    for (int64_t k = begin; k < end; ++k) {
      int64_t groups = 0;
      divergences[k] = Divergence(prefix, bins, options.start_bin + k * options.stride, &groups);
      if (meter.Tick(groups * 16)) return;
    }
  });
  if (cancel.cancelled()) return SearchCancel::Status("entropy");
  return divergences;
}

}  // namespace qcal::kernels::internal
