// Fp8MseErrors and Fp8MseAmax of fp8_search.h: the mse search simulating E4M3.
#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "kernels/amax_search_checks.h"
#include "kernels/fp8_e4m3.h"
#include "kernels/fp8_runs.h"
#include "kernels/fp8_search.h"
#include "kernels/mse_centers.h"
#include "kernels/parallel.h"
#include "kernels/search_cancel.h"

namespace qcal::kernels::internal {
namespace {

constexpr float kZeroAmax = 0x1p-24f;  // fake_quant.h's kFakeQuantZeroAmax

struct Occupied {
  std::vector<float> centers;
  std::vector<double> weights;
};

// sum_k w_k (fake(c_k) - c_k)^2 over the occupied bins, in bin order, with amax = c_i.
double CandidateError(const Occupied& occupied, float amax) {
  const bool zero = amax <= kZeroAmax;
  const float s = amax / kFp8E4M3Max;
  // As FakeTensorQuant: x / inf is the int path's x * 0 for a zero amax.
  const float divisor = zero ? std::numeric_limits<float>::infinity() : s;
  const float step = zero ? 1.0f : s;
  double sum = 0.0;
  const size_t n = occupied.centers.size();
  for (size_t k = 0; k < n; ++k) {
    const float c = occupied.centers[k];
    const float fake = RoundToFp8E4M3(c / divisor) * step;
    const double d = static_cast<double>(fake) - static_cast<double>(c);
    sum += occupied.weights[k] * (d * d);
  }
  return sum;
}

// Sums over bins [0, k) of w, w c and w c^2, each as an unevaluated pair hi + lo (TwoSum), so a
// run's sum, the difference of two prefixes, keeps about 2^-100 of the whole histogram's.
struct RunTables {
  std::vector<double> w_hi, w_lo, wc_hi, wc_lo, wcc_hi, wcc_lo;
};

void AddTo(double& hi, double& lo, double term) {
  const double sum = hi + term;
  const double back = sum - hi;
  lo += (hi - (sum - back)) + (term - back);
  hi = sum;
}

RunTables BuildRunTables(std::span<const uint64_t> counts, const std::vector<float>& centers) {
  const size_t n = counts.size();
  RunTables t;
  for (std::vector<double>* v : {&t.w_hi, &t.w_lo, &t.wc_hi, &t.wc_lo, &t.wcc_hi, &t.wcc_lo}) {
    v->assign(n + 1, 0.0);
  }
  double w_hi = 0, w_lo = 0, wc_hi = 0, wc_lo = 0, wcc_hi = 0, wcc_lo = 0;
  for (size_t k = 0; k < n; ++k) {
    const double w = static_cast<double>(counts[k]);
    const double c = centers[k];
    AddTo(w_hi, w_lo, w);
    AddTo(wc_hi, wc_lo, w * c);
    AddTo(wcc_hi, wcc_lo, w * c * c);
    t.w_hi[k + 1] = w_hi;
    t.w_lo[k + 1] = w_lo;
    t.wc_hi[k + 1] = wc_hi;
    t.wc_lo[k + 1] = wc_lo;
    t.wcc_hi[k + 1] = wcc_hi;
    t.wcc_lo[k + 1] = wcc_lo;
  }
  return t;
}

double Between(const std::vector<double>& hi, const std::vector<double>& lo, int64_t b, int64_t e) {
  return (hi[e] - hi[b]) + (lo[e] - lo[b]);
}

// CandidateError by runs: bins whose centers round to one E4M3 value (contiguous, as rounding
// is monotonic and centers ascend) share one fake value a, and a run's error is
// S2 - a (2 S1 - a W) from the tables. Runs are found from a guess (fp8_runs.h).
double RunError(const RunTables& t, const std::vector<float>& centers, float amax, int64_t* runs) {
  const int64_t n = static_cast<int64_t>(centers.size());
  // The mean step between centers, for guessing where runs end.
  const double width =
      n > 1 ? std::max(1e-300, (static_cast<double>(centers[n - 1]) - centers[0]) / (n - 1)) : 1.0;
  const bool zero = amax <= kZeroAmax;
  const float s = amax / kFp8E4M3Max;
  const float divisor = zero ? std::numeric_limits<float>::infinity() : s;
  const float step = zero ? 1.0f : s;
  auto code = [&](int64_t k) { return RoundToFp8E4M3(centers[k] / divisor); };
  double sum = 0.0;
  *runs = 0;
  for (int64_t begin = 0; begin < n;) {
    const float q = code(begin);
    // Centers step by about `width`: the run probably ends past the midpoint above q.
    const double guess =
        (Fp8UpperMidpoint(q) * static_cast<double>(divisor) - centers[begin]) / width + begin;
    const int64_t lo = Fp8RunEnd(begin, n, q, std::ceil(guess), code);
    const double a = static_cast<double>(q * step);
    const double w = Between(t.w_hi, t.w_lo, begin, lo);
    if (w > 0.0) {
      const double s1 = Between(t.wc_hi, t.wc_lo, begin, lo);
      const double s2 = Between(t.wcc_hi, t.wcc_lo, begin, lo);
      sum += std::max(0.0, s2 - a * (2.0 * s1 - a * w));
    }
    ++*runs;
    begin = lo;
  }
  return sum;
}

}  // namespace

absl::StatusOr<std::vector<double>> Fp8MseErrors(std::span<const uint64_t> counts,
                                                 std::span<const float> edges,
                                                 const SearchOptions& options) {
  return Fp8MseErrorsWith(counts, edges, options, kFp8MseDirectBins);
}

absl::StatusOr<std::vector<double>> Fp8MseErrorsWith(std::span<const uint64_t> counts,
                                                     std::span<const float> edges,
                                                     const SearchOptions& options,
                                                     int64_t direct_bins) {
  if (absl::Status s = CheckEdges(counts, edges); !s.ok()) return s;
  if (absl::Status s = CheckNotEmpty(counts); !s.ok()) return s;
  const int64_t bins = static_cast<int64_t>(counts.size());
  if (absl::Status s = CheckCandidates("mse", options.start_bin, options.stride, 0, bins - 1, bins);
      !s.ok()) {
    return s;
  }
  SearchCancel cancel(options.cancelled);
  if (cancel.Poll()) return SearchCancel::Status("mse");
  // Scaled units only at extreme magnitudes (mse_centers.h): E4M3(c / s) does not change when c
  // and amax scale by one power of two, so the choice is that of the histogram's own units.
  const MseCenters centers = MseSearchCenters(edges);
  Occupied occupied;
  for (int64_t k = 0; k < bins; ++k) {
    if (counts[k] == 0) continue;
    occupied.centers.push_back(centers.centers[k]);
    occupied.weights.push_back(static_cast<double>(counts[k]));
  }
  const int64_t candidates = (bins - 1 - options.start_bin) / options.stride + 1;
  const bool direct = static_cast<int64_t>(occupied.centers.size()) <= direct_bins;
  RunTables tables;
  if (!direct) tables = BuildRunTables(counts, centers.centers);
  // Work units: bins for the direct sum, about 20 bisection steps of 127 runs otherwise.
  const int64_t per_candidate =
      direct ? static_cast<int64_t>(occupied.centers.size()) : int64_t{127} * 20;
  std::vector<double> errors(static_cast<size_t>(candidates));
  // Each candidate is scored on its own, so the split cannot change a result.
  const int chunks = static_cast<int>(
      std::min<int64_t>(BalancedChunksFor(candidates * per_candidate, 1 << 16), candidates));
  ParallelFor(candidates, chunks, [&](int, int64_t begin, int64_t end) {
    SearchCancel::Meter meter(cancel);
    for (int64_t k = begin; k < end; ++k) {
      const int64_t i = options.start_bin + k * options.stride;
      int64_t runs = 0;
      const double error = direct ? CandidateError(occupied, centers.centers[i])
                                  : RunError(tables, centers.centers, centers.centers[i], &runs);
      errors[k] = error / static_cast<double>(bins);
      if (meter.Tick(direct ? per_candidate : runs * 20)) return;
    }
  });
  if (cancel.cancelled()) return SearchCancel::Status("mse");
  if (centers.scale.shift != 0) {
    for (double& e : errors) e = centers.scale.Unscaled(e);
  }
  return errors;
}

absl::StatusOr<AmaxChoice> Fp8MseAmax(std::span<const uint64_t> counts,
                                      std::span<const float> edges, const SearchOptions& options,
                                      int64_t direct_bins) {
  absl::StatusOr<std::vector<double>> errors =
      Fp8MseErrorsWith(counts, edges, options, direct_bins);
  if (!errors.ok()) return errors.status();
  // numpy's argmin: the first NaN if there is one (an infinite center), else the first minimum.
  int64_t best = 0;
  for (int64_t k = 0; k < static_cast<int64_t>(errors->size()); ++k) {
    const double e = (*errors)[k];
    if (std::isnan(e)) {
      best = k;
      break;
    }
    if (e < (*errors)[best]) best = k;
  }
  const int64_t index = options.start_bin + best * options.stride;
  return AmaxChoice{MseSearchCenters(edges).scale.Amax(edges, index), index, (*errors)[best]};
}

}  // namespace qcal::kernels::internal
