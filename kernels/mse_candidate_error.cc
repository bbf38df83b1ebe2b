// The reference's per-candidate mse scorer (mse_amax_internal.h): every candidate center c_i is
// tried as amax, all centers are fake-quantized with it exactly as the reference's float32
// fake_tensor_quant does (narrow range), and the count-weighted squared errors are summed in
// double.
//
// Every center at or above c_i rounds to the bound, so its fake-quantized value is one constant
// v and that part of the sum is v^2 W - 2 v S1 + S2 from suffix sums of w, w c, w c^2; only the
// occupied bins below c_i are quantized one by one (vectorised, eight at a time).
//
// A histogram at an extreme magnitude is searched in power-of-two scaled units (mse_centers.h),
// so its chosen bin does not depend on the magnitude; ordinary ones are searched as they are.
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "kernels/amax_search.h"
#include "kernels/amax_search_checks.h"
#include "kernels/mse_amax_internal.h"
#include "kernels/mse_centers.h"
#include "kernels/parallel.h"
#include "kernels/quant_bound.h"
#include "kernels/simd.h"

namespace qcal::kernels::internal {
namespace {

typedef float Float8 __attribute__((vector_size(32)));
typedef float Float4 __attribute__((vector_size(16)));
typedef double Double4 __attribute__((vector_size(32)));

constexpr float kRoundMagic = 0x1.8p23f;  // as MseLevel's

struct QuantGrid {
  float round_scale;  // 0 where amax <= 2^-24
  float scale;        // 1 there
  float lo;
  float hi;
};

float FakeQuantScalar(float c, const QuantGrid& g) {
  return MseLevel(c, g.round_scale, g.lo, g.hi) / g.scale;
}

// sum_k w_k (fake_quant(c_k) - c_k)^2 over k < n, for centers below the candidate amax
// (CandidateError): there 0 <= c * round_scale < bound + 1/2, so rounding needs none of
// fake_tensor_quant's clamps and the vector loop leaves them out (the scalar tail keeps them;
// the results are the same). Blocks of eight in fixed lanes, then a scalar tail, so the bits do
// not depend on the instruction set.
QCAL_VECTOR_CLONES double QuantizedSquaredError(const float* centers, const double* weights,
                                                int64_t n, const QuantGrid& g) {
  const Float8 zero = {};
  const Float8 round_scale = zero + g.round_scale;
  const Float8 scale = zero + g.scale;
  const Float8 magic = zero + kRoundMagic;
  Double4 acc_lo = {};
  Double4 acc_hi = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    Float8 c;
    Double4 w_lo, w_hi;
    std::memcpy(&c, centers + k, sizeof(c));
    std::memcpy(&w_lo, weights + k, sizeof(w_lo));
    std::memcpy(&w_hi, weights + k + 4, sizeof(w_hi));
    const Float8 q = (c * round_scale + magic) - magic;
    // fake - c is exact in float32: fake is 0, or q / scale with c * scale within 1/2 of
    // q >= 1, so c / 2 <= fake <= 2c (Sterbenz). Widening the difference gives the same double
    // as subtracting the widened values, with half the conversions.
    const Float8 d = q / scale - c;
    Float4 d_lo4, d_hi4;
    std::memcpy(&d_lo4, &d, sizeof(d_lo4));
    std::memcpy(&d_hi4, reinterpret_cast<const char*>(&d) + sizeof(d_lo4), sizeof(d_hi4));
    const Double4 d_lo = __builtin_convertvector(d_lo4, Double4);
    const Double4 d_hi = __builtin_convertvector(d_hi4, Double4);
    acc_lo += w_lo * (d_lo * d_lo);
    acc_hi += w_hi * (d_hi * d_hi);
  }
  const Double4 acc = acc_lo + acc_hi;
  double sum = (acc[0] + acc[2]) + (acc[1] + acc[3]);
  for (; k < n; ++k) {
    const double d = static_cast<double>(FakeQuantScalar(centers[k], g)) - centers[k];
    sum += weights[k] * (d * d);
  }
  return sum;
}

// MseErrorsQuadratic in the scaled units of *scale (mse_centers.h).
absl::StatusOr<std::vector<double>> ScaledMseErrorsQuadratic(std::span<const uint64_t> counts,
                                                             std::span<const float> edges,
                                                             const SearchOptions& options,
                                                             MseScale* scale) {
  float bound = 0.0f;
  if (absl::Status s = CheckMseArguments(counts, edges, options, &bound); !s.ok()) return s;
  const int64_t bins = static_cast<int64_t>(counts.size());
  MseCenters centers = MseSearchCenters(edges);
  *scale = centers.scale;
  const MseTables tables = BuildMseTables(counts, std::move(centers.centers));
  const float lo = options.is_unsigned ? 0.0f : -bound;  // fake_tensor_quant's narrow range
  const int64_t candidates = (bins - 1 - options.start_bin) / options.stride + 1;
  std::vector<double> errors(static_cast<size_t>(candidates));
  const int64_t work = candidates * static_cast<int64_t>(tables.occupied_centers.size());
  // A candidate's cost grows with its index (the bins below it): balanced chunks.
  const int chunks = static_cast<int>(
      std::min<int64_t>(BalancedChunksFor(work, 1 << 17, /*per_thread=*/8), candidates));
  ParallelFor(candidates, chunks, [&](int, int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t i = options.start_bin + k * options.stride;
      errors[k] = CandidateError(tables, i, bound, lo) / static_cast<double>(bins);
    }
  });
  return errors;
}

}  // namespace

MseTables BuildMseTables(std::span<const uint64_t> counts, std::vector<float> centers) {
  const size_t bins = counts.size();
  MseTables t;
  t.centers = std::move(centers);
  t.occupied_below.resize(bins + 1, 0);
  t.suffix_w.assign(bins + 1, 0.0);
  t.suffix_wc.assign(bins + 1, 0.0);
  t.suffix_wcc.assign(bins + 1, 0.0);
  for (size_t k = 0; k < bins; ++k) {
    t.occupied_below[k + 1] = t.occupied_below[k] + (counts[k] != 0 ? 1 : 0);
    if (counts[k] != 0) {
      t.occupied_centers.push_back(t.centers[k]);
      t.occupied_weights.push_back(static_cast<double>(counts[k]));
    }
  }
  for (size_t k = bins; k-- > 0;) {
    const double w = static_cast<double>(counts[k]);
    const double c = t.centers[k];
    t.suffix_w[k] = t.suffix_w[k + 1] + w;
    t.suffix_wc[k] = t.suffix_wc[k + 1] + w * c;
    t.suffix_wcc[k] = t.suffix_wcc[k + 1] + w * c * c;
  }
  return t;
}

double ClippedError(const MseTables& t, int64_t i, float bound) {
  const float amax = t.centers[i];
  const bool zero = amax <= kMseZeroAmax;
  const float scale = bound / amax;
  // Bins from `split` up all quantize to the same value: the bound (from c_i up, since
  // c_k * scale >= c_i * scale rounds to the bound), or 0 everywhere for a zero amax.
  const int64_t split = zero ? 0 : i;
  const double v = zero ? 0.0 : static_cast<double>(bound / scale);
  return v * v * t.suffix_w[split] - 2.0 * v * t.suffix_wc[split] + t.suffix_wcc[split];
}

double CandidateError(const MseTables& t, int64_t i, float bound, float lo) {
  const float amax = t.centers[i];
  const bool zero = amax <= kMseZeroAmax;
  const float scale = bound / amax;
  const QuantGrid grid{zero ? 0.0f : scale, zero ? 1.0f : scale, lo, bound};
  const int64_t split = zero ? 0 : i;
  const double clipped = ClippedError(t, i, bound);
  const double below = QuantizedSquaredError(t.occupied_centers.data(), t.occupied_weights.data(),
                                             t.occupied_below[split], grid);
  return below + clipped;
}

absl::Status CheckMseArguments(std::span<const uint64_t> counts, std::span<const float> edges,
                               const SearchOptions& options, float* bound) {
  if (options.format != QuantFormat::kInt) {
    // MseAmax and MseErrors send FP8 to fp8_search.h before this; never an int answer for FP8.
    return absl::InvalidArgumentError(
        "this mse search is for int quantizers only (FP8 E4M3 is "
        "searched by MseAmax / MseErrors)");
  }
  absl::StatusOr<float> b = QuantBound(options.num_bits, options.is_unsigned);
  if (!b.ok()) return b.status();
  if (absl::Status s = CheckEdges(counts, edges); !s.ok()) return s;
  if (absl::Status s = CheckNotEmpty(counts); !s.ok()) return s;
  const int64_t bins = static_cast<int64_t>(counts.size());
  if (absl::Status s = CheckCandidates("mse", options.start_bin, options.stride, 0, bins - 1, bins);
      !s.ok()) {
    return s;
  }
  *bound = *b;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> MseErrorsQuadratic(std::span<const uint64_t> counts,
                                                       std::span<const float> edges,
                                                       const SearchOptions& options) {
  MseScale scale;
  absl::StatusOr<std::vector<double>> errors =
      ScaledMseErrorsQuadratic(counts, edges, options, &scale);
  if (errors.ok() && scale.shift != 0) {
    for (double& e : *errors) e = scale.Unscaled(e);
  }
  return errors;
}

absl::StatusOr<AmaxChoice> MseAmaxQuadratic(std::span<const uint64_t> counts,
                                            std::span<const float> edges,
                                            const SearchOptions& options) {
  MseScale scale;
  absl::StatusOr<std::vector<double>> errors =
      ScaledMseErrorsQuadratic(counts, edges, options, &scale);
  if (!errors.ok()) return errors.status();
  int64_t best = 0;  // numpy argmin: the first minimum (in scaled units: the same order)
  for (int64_t k = 1; k < static_cast<int64_t>(errors->size()); ++k) {
    if ((*errors)[k] < (*errors)[best]) best = k;
  }
  const int64_t index = options.start_bin + best * options.stride;
  return AmaxChoice{scale.Amax(edges, index), index, scale.Unscaled((*errors)[best])};
}

}  // namespace qcal::kernels::internal
