// MseAmax and MseErrors of amax_search.h: the reference's choice, bit for bit, at a bounded cost.
//
// The reference scores candidate c_i by fake-quantizing every center with amax = c_i and
// summing w_k (fake(c_k) - c_k)^2 (mse_amax_internal.h's CandidateError, O(occupied bins) per
// candidate, so O(L^2) in all: seconds at 2^17 bins, about a day at 2^20). Below c_i the level
// q_k = round(c_k * s) is non-decreasing in k (centers ascend, rounding is monotonic), so the
// bins fall into contiguous runs of one level each, fake value a_q = q / s, and a run's error is
//   sum_run w (a_q - c)^2 = S2 - a_q (2 S1 - a_q W)
// from prefix sums W, S1, S2 of w, w c, w c^2. A run's end is found exactly: the first bin whose
// float32 c_k * s rounds above q, by galloping from where uniform bins would put it and checking
// the float32 rounding itself, so no boundary is ever misplaced. That costs O(levels) per
// candidate (every level from the lowest occupied bin's to the highest's) instead of
// O(occupied bins), and is used only where the occupied bins outnumber the levels 16 to 1.
//
// The sums differ from the reference's double sums by rounding, and near the flat minimum
// neighbouring candidates differ by little more, so the choice is settled in three tiers, each
// giving every candidate an interval certain to hold the reference's value:
//   coarse  prefix sums rounded to double; first every 1/256th candidate, then the others but
//           those whose clipped part alone (a lower end: the part below is >= 0) exceeds the
//           lowest upper end so far. S2 - a(2 S1 - a W) cancels, so the interval is wide
//           (about 2^-49 levels sum w c^2), but it rules out all candidates whose lower end
//           lies above the lowest upper end.
//   fine    the same sums in double-double (exact products, AccurateDWPlusDW additions); the
//           survivors only. Its interval is about as wide as the reference's own rounding.
//   exact   CandidateError itself (the reference's bits) for the candidates still in reach of
//           the lowest upper end; their first minimum is the reference's, since the reference's
//           first minimum can never be ruled out.
// The reference's value lies within (n / 8 + 11) 2^-53 relative of the exact sum of its terms
// (n occupied bins below c_i: eight lanes of n / 8 additions, a combine, a tail of at most 7,
// and the product's rounding; each term w (d d) has d exact in float32 and d d exact in
// double), and rounding to nearest is monotonic, so an interval on the exact sum gives one on
// the reference's (below + clipped) / L, where `clipped` is computed as the reference does.
//
// Candidates with an amax <= 2^-24 or few occupied bins below (at most kMseDirectBinsPerLevel
// per level) are scored by CandidateError from the start: it is as cheap there and exact.
// Candidates whose every occupied bin lies below them and quantizes to 0 have one value (the
// same operations on the same numbers), computed once.
//
// Cost: O(L) for the tables; O(candidates x min(levels, occupied bins)) for the coarse tier
// (times a log only where bins are not uniform: each level's end is guessed from the mean bin
// width, then galloped to); O(levels) per fine survivor; O(occupied bins) per rescored
// candidate. Rescored are the candidates whose reference values cannot be told apart from the
// minimum's by bounds on the rounding: a handful on ordinary histograms (one at 2^17 and 2^20
// bins in bench/), but all of a stretch of candidates whose double sums come out equal because
// their differences are absorbed (a dense low region of counts near 2^60 that quantizes to 0,
// a tail of small counts: mse_amax_test.cc's seed 756 rescores all its 300). In the worst case
// that is every candidate, and the cost returns to the reference's O(candidates x occupied).
// Centers that are not finite, not ascending or negative (no qcal histogram has them) are
// searched the reference's way.
//
// A histogram at an extreme magnitude is searched in power-of-two scaled units (mse_centers.h),
// so its chosen bin does not depend on the magnitude; ordinary ones are searched as they are.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "kernels/amax_search.h"
#include "kernels/fp8_search.h"
#include "kernels/mse_amax_internal.h"
#include "kernels/mse_centers.h"
#include "kernels/parallel.h"
#include "kernels/search_cancel.h"

namespace qcal::kernels {
namespace {

using internal::CandidateError;
using internal::ClippedError;
using internal::MseLevel;
using internal::MseSearchStats;
using internal::MseTables;

constexpr double kU = 0x1p-53;  // unit roundoff of double
constexpr double kU2 = kU * kU;

// Double-double arithmetic (hi + lo, |lo| <= ulp(hi) / 2), as in Joldes, Muller and Popescu,
// "Tight and rigorous error bounds for basic building blocks of double-word arithmetic" (ACM
// TOMS 2017).
struct DoubleDouble {
  double hi = 0.0;
  double lo = 0.0;
};

DoubleDouble TwoSum(double a, double b) {
  const double s = a + b;
  const double b_virtual = s - a;
  return {s, (a - (s - b_virtual)) + (b - b_virtual)};
}

DoubleDouble FastTwoSum(double a, double b) {  // |a| >= |b|
  const double s = a + b;
  return {s, b - (s - a)};
}

// Veltkamp's split: x = hi + lo, each half fitting 26 bits (|x| far below 2^996 here).
DoubleDouble Split(double x) {
  const double t = 134217729.0 * x;  // 2^27 + 1
  const double hi = t - (t - x);
  return {hi, x - hi};
}

// Dekker's exact product: the baseline build has no FMA instruction, and std::fma would be a
// library call.
DoubleDouble TwoProd(double a, double b) {
  const double p = a * b;
  const DoubleDouble x = Split(a);
  const DoubleDouble y = Split(b);
  return {p, ((x.hi * y.hi - p) + x.hi * y.lo + x.lo * y.hi) + x.lo * y.lo};
}

// AccurateDWPlusDW: relative error at most 3u^2 / (1 - 4u), whatever the signs.
DoubleDouble Add(DoubleDouble x, DoubleDouble y) {
  const DoubleDouble s = TwoSum(x.hi, y.hi);
  const DoubleDouble t = TwoSum(x.lo, y.lo);
  const DoubleDouble v = FastTwoSum(s.hi, s.lo + t.hi);
  return FastTwoSum(v.hi, t.lo + v.lo);
}

DoubleDouble Sub(DoubleDouble x, DoubleDouble y) { return Add(x, {-y.hi, -y.lo}); }

// DWTimesFP1: relative error at most 1.5u^2 + 4u^3.
DoubleDouble Mul(DoubleDouble x, double y) {
  const DoubleDouble c = TwoProd(x.hi, y);
  const DoubleDouble t = FastTwoSum(c.hi, x.lo * y);
  return FastTwoSum(t.hi, t.lo + c.lo);
}

// Where the reference's value of a candidate lies, in final units (error sum / L).
struct Interval {
  double lo = 0.0;
  double hi = 0.0;
  bool exact = false;  // lo == hi is the reference's value
};

// The level-by-level search over one histogram (in mse_centers.h's scaled units).
class LevelSearch {
 public:
  LevelSearch(std::span<const uint64_t> counts, MseTables tables, float bound, float lo,
              int64_t direct_bins_per_level)
      : tables_(std::move(tables)),
        bins_(static_cast<int64_t>(counts.size())),
        bound_(bound),
        lo_(lo),
        levels_(static_cast<int64_t>(bound) + 1),
        direct_below_(std::max<int64_t>(direct_bins_per_level, 1) * levels_) {
    const std::vector<float>& c = tables_.centers;
    applicable_ = std::isfinite(c[0]) && c[0] >= 0.0f;
    for (int64_t k = 1; k < bins_ && applicable_; ++k) {
      applicable_ = std::isfinite(c[k]) && c[k] >= c[k - 1];
    }
    last_occupied_ = bins_ - 1;
    while (counts[last_occupied_] == 0) --last_occupied_;  // the histogram is not empty
    // Without a candidate beyond Direct's reach (small histograms) no level sums are needed.
    if (!applicable_ || tables_.occupied_below[bins_ - 1] <= direct_below_) return;
    first_center_ = c[0];
    spacing_ = bins_ > 1 ? (static_cast<double>(c[bins_ - 1]) - c[0]) / (bins_ - 1) : 0.0;
    // Prefix sums from the bottom, exact products, non-negative terms: each prefix is within
    // 3 k u^2 (1 + 4u) relative of the exact sum of its k terms.
    const size_t n = static_cast<size_t>(bins_) + 1;
    hi_.resize(n);
    lo_sums_.resize(n);
    DoubleDouble w_sum, wc_sum, wcc_sum;
    for (int64_t k = 0; k < bins_; ++k) {
      const double w = static_cast<double>(counts[k]);
      const double x = c[k];
      if (w != 0.0) {
        w_sum = Add(w_sum, {w, 0.0});
        wc_sum = Add(wc_sum, TwoProd(w, x));
        wcc_sum = Add(wcc_sum, TwoProd(w, x * x));  // x * x is exact
      }
      hi_[k + 1] = {w_sum.hi, wc_sum.hi, wcc_sum.hi};
      lo_sums_[k + 1] = {w_sum.lo, wc_sum.lo, wcc_sum.lo};
    }
  }

  // Whether the centers allow the level-by-level sums (finite, non-negative, ascending).
  bool applicable() const { return applicable_; }

  // Whether candidate i is scored by CandidateError from the start.
  bool Direct(int64_t i) const {
    return tables_.centers[i] <= internal::kMseZeroAmax ||
           tables_.occupied_below[i] <= direct_below_;
  }

  // The reference's value of candidate i.
  double Exact(int64_t i) const {
    return CandidateError(tables_, i, bound_, lo_) / static_cast<double>(bins_);
  }

  // Work units (search_cancel.h) that Exact(i) costs.
  int64_t ExactWork(int64_t i) const { return 1 + tables_.occupied_below[i] / 8; }

  // Candidates every occupied bin of which lies below them and quantizes to 0: the reference
  // does the same operations on the same numbers for all of them.
  bool AllZero(int64_t i) const {
    if (tables_.suffix_w[i] != 0.0 || tables_.centers[i] <= internal::kMseZeroAmax) return false;
    const float scale = bound_ / tables_.centers[i];
    return MseLevel(tables_.centers[last_occupied_], scale, lo_, bound_) == 0.0f;
  }

  // The exact sum over the occupied bins below c_i of w (a_q - c)^2, level by level, in double
  // (kFine false) or double-double: `estimate` and a bound on its `error`; `levels` evaluated.
  // Not for Direct candidates.
  struct LevelSums {
    double estimate = 0.0;
    double error = 0.0;
    int64_t levels = 0;
  };
  template <bool kFine>
  LevelSums Sums(int64_t i) const {
    const std::vector<float>& c = tables_.centers;
    const float amax = c[i];
    const float scale = bound_ / amax;  // as the reference: float32
    DoubleDouble sum;                   // sum over runs of w (a - c)^2
    double sum_plain = 0.0;
    double abs_sum = 0.0;  // sum over runs of |computed run error|
    int64_t runs = 0;
    const Guide guide = GuideFor(scale);
    // Every level from the lowest occupied bin's to the highest's below c_i, each run's end
    // found on its own (so the levels' searches overlap in the processor); a run without
    // occupied bins adds exactly 0. Not Direct, so there are more occupied bins than levels.
    const float* occupied = tables_.occupied_centers.data();
    const float q_first = MseLevel(occupied[0], scale, lo_, bound_);
    const float q_last = MseLevel(occupied[tables_.occupied_below[i] - 1], scale, lo_, bound_);
    int64_t pos = 0;  // the run's first bin
    for (float q = q_first;; q += 1.0f) {
      // Bin pos - 1 has a level below q (or pos is 0, at most the lowest occupied level).
      const int64_t end = q == q_last ? i : RunEnd(pos > 0 ? pos - 1 : 0, i, q, scale, guide);
      const double a = static_cast<double>(q / scale);  // the fake value, float32 as reference
      if constexpr (kFine) {
        const Sums3& he = hi_[end];
        const Sums3& hp = hi_[pos];
        const Sums3& le = lo_sums_[end];
        const Sums3& lp = lo_sums_[pos];
        const DoubleDouble d0 = Sub({he.w, le.w}, {hp.w, lp.w});
        const DoubleDouble d1 = Sub({he.wc, le.wc}, {hp.wc, lp.wc});
        const DoubleDouble d2 = Sub({he.wcc, le.wcc}, {hp.wcc, lp.wcc});
        const DoubleDouble run = Sub(d2, Mul(Sub(Mul(d1, 2.0), Mul(d0, a)), a));
        sum = Add(sum, run);
        abs_sum += std::abs(run.hi);
      } else {
        const Sums3& he = hi_[end];
        const Sums3& hp = hi_[pos];
        const double d0 = he.w - hp.w;
        const double d1 = he.wc - hp.wc;
        const double d2 = he.wcc - hp.wcc;
        const double run = d2 - a * (2.0 * d1 - a * d0);
        sum_plain += run;
        abs_sum += std::abs(run);
      }
      ++runs;
      pos = end;
      if (q == q_last) break;
    }
    // m bounds a_q^2 W + 2 a_q S1 + S2 at every run's end: every prefix there is at most the
    // prefix at i, and a_q at most the bound's fake value.
    const double a_top = static_cast<double>(bound_ / scale);
    const double m = (a_top * a_top * hi_[i].w + 2.0 * a_top * hi_[i].wc + hi_[i].wcc) * 1.01;
    const double r = static_cast<double>(runs);
    LevelSums out;
    out.levels = runs;
    if constexpr (kFine) {
      // Per run: the prefixes' 3 k u^2 (k <= i), the differences', products' and sums' u^2
      // terms, all within 32 (i + 4) u^2 m; the sum over runs adds 3u^2 of each partial sum;
      // rounding the double-double to double u of the estimate.
      out.estimate = sum.hi;
      out.error = 32.0 * (static_cast<double>(i) + 4.0) * kU2 * r * m +
                  4.0 * kU2 * (r + 1.0) * abs_sum + 2.0 * kU * std::abs(out.estimate);
    } else {
      // Per run: the double prefixes are within 1.01u of the exact ones, so the differences
      // within 3.1u of the prefix at the run's end, and the three products and sums bring the
      // run's error to at most 13u m plus u of its own value; the sum over runs adds u of
      // each partial sum.
      out.estimate = sum_plain;
      out.error = 16.0 * kU * r * m + 2.0 * kU * (r + 2.0) * abs_sum;
    }
    out.error *= 1.01;
    return out;
  }

  // Where CandidateError(i) / L lies, given level sums of candidate i.
  Interval Bounds(int64_t i, const LevelSums& sums) const {
    // The reference's sum of the n terms below c_i: within gamma of their exact sum.
    const double n = static_cast<double>(tables_.occupied_below[i]);
    const double gamma = (n / 8.0 + 16.0) * kU * 1.01;
    // Each endpoint is computed with at most three roundings the wrong way: 8u covers them.
    const double lower =
        std::max(0.0, (sums.estimate - sums.error) * (1.0 - gamma) * (1.0 - 8.0 * kU));
    const double upper = (sums.estimate + sums.error) * (1.0 + gamma) * (1.0 + 8.0 * kU);
    // The reference adds `clipped` and divides by L, both monotonic roundings.
    const double clipped = ClippedError(tables_, i, bound_);
    const double bins = static_cast<double>(bins_);
    return {(lower + clipped) / bins, (upper + clipped) / bins, false};
  }

  // At most CandidateError(i) / L as the reference rounds it: its part below c_i is >= 0.
  double ClippedFloor(int64_t i) const {
    return ClippedError(tables_, i, bound_) / static_cast<double>(bins_);
  }

  // The level sums' own value of candidate i in final units (MseErrors).
  double Value(int64_t i, const LevelSums& sums) const {
    return (sums.estimate + ClippedError(tables_, i, bound_)) / static_cast<double>(bins_);
  }

 private:
  // Where uniform bins would put a level's end: bin ceil((q + 1/2) per_level - offset).
  struct Guide {
    double per_level = 0.0;
    double offset = 0.0;
  };
  Guide GuideFor(float scale) const {
    if (spacing_ <= 0.0) return {};
    return {1.0 / (static_cast<double>(scale) * spacing_), first_center_ / spacing_};
  }

  // The first bin in (pos, i) whose level exceeds q, or i, where bin pos's level is at most q.
  // Exact whatever the guide: the guess is only where the search starts.
  int64_t RunEnd(int64_t pos, int64_t i, float q, float scale, const Guide& guide) const {
    const float* c = tables_.centers.data();
    // Below c_i, 0 <= c * scale <= c_i * scale < bound + 1/2: MseLevel's clamps change nothing.
    const float magic = 0x1.8p23f;
    auto above = [&](int64_t k) { return (c[k] * scale + magic) - magic > q; };
    int64_t below_end = pos;  // level <= q
    int64_t end = i;          // level > q, or i
    // About ceil(x); truncating is cheaper and the checks below make any guess exact.
    const double x = (static_cast<double>(q) + 0.5) * guide.per_level - guide.offset;
    const int64_t guess = x >= static_cast<double>(pos + 1)
                              ? (x < static_cast<double>(i) ? static_cast<int64_t>(x) + 1 : i)
                              : pos + 1;
    if (guess < i) {
      if (above(guess)) {
        end = guess;
        for (int64_t step = 1;; step *= 2) {
          const int64_t k = end - step;
          if (k <= below_end) break;
          if (!above(k)) {
            below_end = k;
            break;
          }
          end = k;
        }
      } else {
        below_end = guess;
        for (int64_t step = 1;; step *= 2) {
          const int64_t k = below_end + step;
          if (k >= end) break;
          if (above(k)) {
            end = k;
            break;
          }
          below_end = k;
        }
      }
    }
    while (end - below_end > 1) {
      const int64_t mid = below_end + (end - below_end) / 2;
      if (above(mid)) {
        end = mid;
      } else {
        below_end = mid;
      }
    }
    return end;
  }

  MseTables tables_;
  int64_t bins_;
  float bound_;
  float lo_;
  int64_t levels_;        // 0 .. bound for non-negative centers
  int64_t direct_below_;  // Direct up to this many occupied bins below
  bool applicable_ = false;
  double first_center_ = 0.0;
  double spacing_ = 0.0;  // mean distance between neighbouring centers
  // Prefix sums over bins k < index of w, w c and w c^2 in double-double: hi_ + lo_sums_ (the
  // coarse tier reads hi_ alone, one cache line per run).
  struct Sums3 {
    double w = 0.0;
    double wc = 0.0;
    double wcc = 0.0;
  };
  std::vector<Sums3> hi_, lo_sums_;
  int64_t last_occupied_ = 0;
};

// A search's candidates (center indices first, first + stride, ...) over one histogram.
struct MseSearch {
  MseScale scale;
  std::unique_ptr<LevelSearch> levels;
  int64_t first = 0;
  int64_t stride = 1;
  int64_t count = 0;
  int64_t work_per_candidate = 1;  // for the chunking: about the levels of one candidate

  int64_t Index(int64_t k) const { return first + k * stride; }
  int Chunks(int64_t n) const {
    return static_cast<int>(
        std::min<int64_t>(BalancedChunksFor(n * work_per_candidate, 1 << 14, 8), n));
  }
};

absl::StatusOr<MseSearch> MakeSearch(
    std::span<const uint64_t> counts, std::span<const float> edges, const SearchOptions& options,
    int64_t direct_bins_per_level = internal::kMseDirectBinsPerLevel) {
  float bound = 0.0f;
  if (absl::Status s = internal::CheckMseArguments(counts, edges, options, &bound); !s.ok()) {
    return s;
  }
  const int64_t bins = static_cast<int64_t>(counts.size());
  MseCenters centers = MseSearchCenters(edges);
  MseSearch search;
  search.scale = centers.scale;
  const float lo = options.is_unsigned ? 0.0f : -bound;  // fake_tensor_quant's narrow range
  search.levels = std::make_unique<LevelSearch>(
      counts, internal::BuildMseTables(counts, std::move(centers.centers)), bound, lo,
      direct_bins_per_level);
  search.first = options.start_bin;
  search.stride = options.stride;
  search.count = (bins - 1 - options.start_bin) / options.stride + 1;
  search.work_per_candidate = std::min<int64_t>(static_cast<int64_t>(bound) + 1, bins);
  return search;
}

// MseAmax in scaled units: the chosen candidate's number and its reference value.
absl::StatusOr<std::pair<int64_t, double>> ScaledChoice(const MseSearch& search,
                                                        SearchCancel& cancel,
                                                        MseSearchStats& stats) {
  const LevelSearch& levels = *search.levels;
  stats.candidates = search.count;
  stats.quadratic = !levels.applicable();
  std::vector<Interval> where(static_cast<size_t>(search.count));
  // Coarse tier (and the exact value of Direct candidates), first on every `sample`-th
  // candidate, whose lowest upper end bounds the minimum from above.
  auto score = [&](int64_t k) -> int64_t {
    const int64_t i = search.Index(k);
    if (!levels.applicable() || levels.Direct(i)) {
      const double v = levels.Exact(i);
      where[k] = {v, v, true};
      return levels.ExactWork(i);
    }
    const LevelSearch::LevelSums sums = levels.Sums<false>(i);
    where[k] = levels.Bounds(i, sums);
    return sums.levels;
  };
  const int64_t sample = std::max<int64_t>(1, search.count / 256);
  const int64_t sampled = (search.count + sample - 1) / sample;
  ParallelFor(sampled, search.Chunks(sampled), [&](int, int64_t begin, int64_t end) {
    SearchCancel::Meter meter(cancel);
    for (int64_t j = begin; j < end; ++j) {
      if (meter.Tick(score(j * sample))) return;
    }
  });
  if (cancel.cancelled()) return SearchCancel::Status("mse");
  double first_reach = std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < sampled; ++j) first_reach = std::min(first_reach, where[j * sample].hi);
  // The rest, except candidates whose clipped part alone lies above that bound (the sum below
  // is of non-negative terms, and adding and dividing round monotonically): no sums for those,
  // typically every candidate well below the optimum.
  ParallelFor(search.count, search.Chunks(search.count), [&](int, int64_t begin, int64_t end) {
    SearchCancel::Meter meter(cancel);
    for (int64_t k = begin; k < end; ++k) {
      if (k % sample == 0) continue;
      const double floor = levels.ClippedFloor(search.Index(k));
      int64_t work = 1;
      if (floor > first_reach) {
        where[k] = {floor, std::numeric_limits<double>::infinity(), false};
      } else {
        work = score(k);
      }
      if (meter.Tick(work)) return;
    }
  });
  if (cancel.cancelled()) return SearchCancel::Status("mse");
  // The reference's minimum is at most every upper end; a candidate whose lower end lies above
  // the lowest upper end is not its first minimum.
  auto reach = [&] {
    double r = std::numeric_limits<double>::infinity();
    for (const Interval& v : where) r = std::min(r, v.hi);
    return r;
  };
  double limit = reach();
  std::vector<int64_t> open;  // candidates still in reach, not yet exact
  for (int64_t k = 0; k < search.count; ++k) {
    if (where[k].exact) {
      ++stats.direct;
    } else if (where[k].hi == std::numeric_limits<double>::infinity()) {
      ++stats.pruned;
    } else {
      ++stats.coarse;
      if (where[k].lo <= limit) open.push_back(k);
    }
  }
  // Fine tier.
  stats.fine = static_cast<int64_t>(open.size());
  const int64_t open_count = static_cast<int64_t>(open.size());
  ParallelFor(open_count, search.Chunks(open_count), [&](int, int64_t begin, int64_t end) {
    SearchCancel::Meter meter(cancel);
    for (int64_t j = begin; j < end; ++j) {
      const int64_t i = search.Index(open[j]);
      const LevelSearch::LevelSums sums = levels.Sums<true>(i);
      where[open[j]] = levels.Bounds(i, sums);
      if (meter.Tick(sums.levels)) return;
    }
  });
  if (cancel.cancelled()) return SearchCancel::Status("mse");
  limit = reach();
  std::vector<int64_t> rescore;
  for (const int64_t k : open) {
    if (where[k].lo <= limit) rescore.push_back(k);
  }
  // Exact tier. Of the candidates that quantize every occupied bin to 0 (one value), only the
  // first is scored.
  std::vector<int64_t> scored;
  int64_t all_zero = -1;
  for (const int64_t k : rescore) {
    if (levels.AllZero(search.Index(k))) {
      if (all_zero >= 0) continue;
      all_zero = k;
    }
    scored.push_back(k);
  }
  stats.rescored = static_cast<int64_t>(scored.size());
  const int64_t scored_count = static_cast<int64_t>(scored.size());
  ParallelFor(scored_count, search.Chunks(scored_count), [&](int, int64_t begin, int64_t end) {
    SearchCancel::Meter meter(cancel);
    for (int64_t j = begin; j < end; ++j) {
      const int64_t i = search.Index(scored[j]);
      const double v = levels.Exact(i);
      where[scored[j]] = {v, v, true};
      if (meter.Tick(levels.ExactWork(i))) return;
    }
  });
  if (cancel.cancelled()) return SearchCancel::Status("mse");
  for (const int64_t k : rescore) {
    if (all_zero >= 0 && levels.AllZero(search.Index(k))) where[k] = where[all_zero];
  }
  // numpy argmin: the first minimum among the values known exactly, which hold the
  // reference's first minimum.
  int64_t best = -1;
  for (int64_t k = 0; k < search.count; ++k) {
    if (where[k].exact && (best < 0 || where[k].lo < where[best].lo)) best = k;
  }
  return std::make_pair(best, where[best].lo);
}

}  // namespace

namespace internal {

absl::StatusOr<AmaxChoice> MseAmaxWithStats(std::span<const uint64_t> counts,
                                            std::span<const float> edges,
                                            const SearchOptions& options, MseSearchStats* stats,
                                            int64_t direct_bins_per_level) {
  MseSearchStats local;
  MseSearchStats& out = stats != nullptr ? *stats : local;
  out = MseSearchStats{};
  absl::StatusOr<MseSearch> search = MakeSearch(counts, edges, options, direct_bins_per_level);
  if (!search.ok()) return search.status();
  SearchCancel cancel(options.cancelled);
  if (cancel.Poll()) return SearchCancel::Status("mse");
  absl::StatusOr<std::pair<int64_t, double>> best = ScaledChoice(*search, cancel, out);
  if (!best.ok()) return best.status();
  const int64_t index = search->Index(best->first);
  return AmaxChoice{search->scale.Amax(edges, index), index, search->scale.Unscaled(best->second)};
}

}  // namespace internal

absl::StatusOr<AmaxChoice> MseAmax(std::span<const uint64_t> counts, std::span<const float> edges,
                                   const SearchOptions& options) {
  if (options.format == QuantFormat::kFp8E4M3) return internal::Fp8MseAmax(counts, edges, options);
  return internal::MseAmaxWithStats(counts, edges, options, nullptr);
}

absl::StatusOr<std::vector<double>> MseErrors(std::span<const uint64_t> counts,
                                              std::span<const float> edges,
                                              const SearchOptions& options) {
  if (options.format == QuantFormat::kFp8E4M3) {
    return internal::Fp8MseErrors(counts, edges, options);
  }
  absl::StatusOr<MseSearch> search = MakeSearch(counts, edges, options);
  if (!search.ok()) return search.status();
  SearchCancel cancel(options.cancelled);
  if (cancel.Poll()) return SearchCancel::Status("mse");
  const LevelSearch& levels = *search->levels;
  std::vector<double> errors(static_cast<size_t>(search->count));
  ParallelFor(search->count, search->Chunks(search->count), [&](int, int64_t begin, int64_t end) {
    SearchCancel::Meter meter(cancel);
    for (int64_t k = begin; k < end; ++k) {
      const int64_t i = search->Index(k);
      int64_t work = 0;
      if (!levels.applicable() || levels.Direct(i)) {
        errors[k] = levels.Exact(i);
        work = levels.ExactWork(i);
      } else {
        const LevelSearch::LevelSums sums = levels.Sums<true>(i);
        errors[k] = levels.Value(i, sums);
        work = sums.levels;
      }
      if (meter.Tick(work)) return;
    }
  });
  if (cancel.cancelled()) return SearchCancel::Status("mse");
  if (search->scale.shift != 0) {
    for (double& e : errors) e = search->scale.Unscaled(e);
  }
  return errors;
}

}  // namespace qcal::kernels
