// Fp8MseErrors and Fp8MseAmax of fp8_search.h: the mse search simulating E4M3.
#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "kernels/amax_search_checks.h"
#include "kernels/fp8_e4m3.h"
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

}  // namespace

absl::StatusOr<std::vector<double>> Fp8MseErrors(std::span<const uint64_t> counts,
                                                 std::span<const float> edges,
                                                 const SearchOptions& options) {
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
  const int64_t per_candidate = static_cast<int64_t>(occupied.centers.size());
  std::vector<double> errors(static_cast<size_t>(candidates));
  // Each candidate is scored on its own, so the split cannot change a result.
  const int chunks = static_cast<int>(
      std::min<int64_t>(BalancedChunksFor(candidates * per_candidate, 1 << 16), candidates));
  ParallelFor(candidates, chunks, [&](int, int64_t begin, int64_t end) {
    SearchCancel::Meter meter(cancel);
    for (int64_t k = begin; k < end; ++k) {
      const int64_t i = options.start_bin + k * options.stride;
      errors[k] = CandidateError(occupied, centers.centers[i]) / static_cast<double>(bins);
      if (meter.Tick(per_candidate)) return;
    }
  });
  if (cancel.cancelled()) return SearchCancel::Status("mse");
  if (centers.scale.shift != 0) {
    for (double& e : errors) e = centers.scale.Unscaled(e);
  }
  return errors;
}

absl::StatusOr<AmaxChoice> Fp8MseAmax(std::span<const uint64_t> counts,
                                      std::span<const float> edges, const SearchOptions& options) {
  absl::StatusOr<std::vector<double>> errors = Fp8MseErrors(counts, edges, options);
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
