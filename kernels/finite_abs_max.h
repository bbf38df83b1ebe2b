// The reduction every calibrator starts with: max |x| over the finite values of a batch, and how
// many values were NaN or +-inf (those are counted and left out, see ../shared/DESIGN.md).
#ifndef QCAL_KERNELS_FINITE_ABS_MAX_H_
#define QCAL_KERNELS_FINITE_ABS_MAX_H_

#include <cstdint>
#include <span>

namespace qcal::kernels {

struct FiniteAbsMaxResult {
  // Largest finite |x|, exact; +0.0 when there is none (empty, all zero or all non-finite).
  float abs_max = 0.0f;
  int64_t nonfinite = 0;
};

// One pass over x (float32); large spans use every core.
FiniteAbsMaxResult FiniteAbsMax(std::span<const float> x);

// The same over x[0..count), one thread. The float's bits with the sign cleared order like the
// magnitudes, so the reduction runs on integers and needs no NaN-aware compare.
FiniteAbsMaxResult FiniteAbsMaxSerial(const float* x, int64_t count);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_FINITE_ABS_MAX_H_
