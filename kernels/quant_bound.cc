#include "kernels/quant_bound.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace qcal::kernels {

absl::StatusOr<float> QuantBound(int num_bits, bool is_unsigned) {
  const int min_bits = is_unsigned ? 1 : 2;
  if (num_bits < min_bits || num_bits > kMaxNumBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_bits ", num_bits, " is outside [", min_bits, ", ", kMaxNumBits, "] for ",
                     is_unsigned ? "unsigned" : "signed", " quantization"));
  }
  const int shift = num_bits - 1 + (is_unsigned ? 1 : 0);
  return static_cast<float>((int64_t{1} << shift) - 1);
}

}  // namespace qcal::kernels
