// The number format a quantizer rounds to: integers of num_bits bits, or FP8 E4M3.
//
// FP8 E4M3 is OCP's E4M3FN (the ONNX FLOAT8E4M3FN type, NVIDIA's fp8 e4m3): 1 sign, 4 exponent
// (bias 7) and 3 mantissa bits, no infinities, one NaN encoding per sign, largest finite value
// 448, smallest subnormal 2^-9. A quantizer in this format scales by amax / 448 (TensorRT's and
// ModelOpt's FP8 rule), so amax maps to the largest finite E4M3 value.
#ifndef QCAL_KERNELS_QUANT_FORMAT_H_
#define QCAL_KERNELS_QUANT_FORMAT_H_

#include "absl/strings/string_view.h"

namespace qcal::kernels {

enum class QuantFormat {
  kInt,      // num_bits integers: bound = 2^(num_bits - 1 + unsigned) - 1 (quant_bound.h)
  kFp8E4M3,  // FP8 E4M3FN: bound = kFp8E4M3Max
};

// Largest finite E4M3FN value; the scale of an FP8 quantizer is amax / kFp8E4M3Max.
inline constexpr float kFp8E4M3Max = 448.0f;

// "int" or "fp8_e4m3", as the amax table's JSON and qcal's CLI write them.
constexpr absl::string_view QuantFormatName(QuantFormat format) {
  return format == QuantFormat::kFp8E4M3 ? "fp8_e4m3" : "int";
}

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_QUANT_FORMAT_H_
