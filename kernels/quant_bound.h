// The quantization grid every quantizer and amax search shares, as pytorch-quantization defines
// it: bound = 2^(num_bits - 1 + unsigned) - 1 (127 for signed 8-bit, 255 unsigned); levels run
// over [-bound, bound] (narrow range), [-bound - 1, bound], or [0, bound] unsigned.
#ifndef QCAL_KERNELS_QUANT_BOUND_H_
#define QCAL_KERNELS_QUANT_BOUND_H_

#include "absl/status/statusor.h"

namespace qcal::kernels {

inline constexpr int kMaxNumBits = 16;

// The bound as float32. INVALID_ARGUMENT unless the grid has a positive level and fits 16 bits:
// num_bits in [2, 16] signed, [1, 16] unsigned. (The reference accepts 0 and 1 signed and returns
// NaN or meaningless values; qcal refuses them.)
absl::StatusOr<float> QuantBound(int num_bits, bool is_unsigned);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_QUANT_BOUND_H_
