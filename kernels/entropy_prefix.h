// Prefix sums the entropy (KL) searches share, INT8 (entropy_amax.cc) and FP8 E4M3
// (fp8_entropy.cc): over the counts with h[0] replaced by h[1], as pytorch-quantization's
// _compute_amax_entropy works on a copy whose zero bin takes its neighbour's count (a histogram
// of one bin keeps its own). Entry k sums bins [0, k).
#ifndef QCAL_KERNELS_ENTROPY_PREFIX_H_
#define QCAL_KERNELS_ENTROPY_PREFIX_H_

#include <cstdint>
#include <span>
#include <vector>

namespace qcal::kernels::internal {

struct EntropyPrefix {
  std::vector<double> count;      // sum h
  std::vector<double> h_log_h;    // sum h ln h
  std::vector<int64_t> occupied;  // number of bins with h != 0
};

EntropyPrefix BuildEntropyPrefix(std::span<const uint64_t> counts);

}  // namespace qcal::kernels::internal

#endif  // QCAL_KERNELS_ENTROPY_PREFIX_H_
