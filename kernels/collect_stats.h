// What one Collect call took in: every calibrator reports it.
#ifndef QCAL_KERNELS_COLLECT_STATS_H_
#define QCAL_KERNELS_COLLECT_STATS_H_

#include <cstdint>

namespace qcal::kernels {

struct CollectStats {
  // All values of the batch, finite or not.
  int64_t elements = 0;
  // NaN and +-inf values: counted, and left out of the calibrator's state.
  int64_t nonfinite = 0;
};

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_COLLECT_STATS_H_
