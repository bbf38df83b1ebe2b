// Element types a tensor batch can arrive in, and their decoding to float32.
//
//   std::vector<float> values(count);
//   qcal::kernels::DecodeToFloat32(qcal::kernels::DType::kBFloat16, bytes, count, values.data());
#ifndef QCAL_KERNELS_DTYPE_H_
#define QCAL_KERNELS_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qcal::kernels {

enum class DType { kFloat32, kFloat16, kBFloat16, kFloat64 };

// Bytes per element: 4, 2, 2, 8.
size_t DTypeSize(DType dtype);

// "float32", "float16", "bfloat16", "float64".
std::string_view DTypeName(DType dtype);

// Decodes `count` little-endian elements at `bytes` into float32 `out[0..count)`.
// float16/bfloat16 widen exactly (NaN and +-inf stay non-finite); float64 rounds to nearest, and
// values beyond float32's range become +-inf (then counted as non-finite by the calibrators).
void DecodeToFloat32(DType dtype, const uint8_t* bytes, size_t count, float* out);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_DTYPE_H_
