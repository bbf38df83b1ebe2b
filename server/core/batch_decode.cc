#include "server/core/batch_decode.h"

#include <bit>
#include <cstdint>
#include <limits>

namespace qcal::server {

std::span<const float> DecodeBatch(const Batch& batch, std::string* scratch) {
  const size_t count = static_cast<size_t>(batch.elements);
  const auto* bytes = reinterpret_cast<const uint8_t*>(batch.bytes.data());
  if (batch.header.dtype == kernels::DType::kFloat32 &&
      std::endian::native == std::endian::little &&
      reinterpret_cast<uintptr_t>(bytes) % alignof(float) == 0) {
    // The wire bytes are the float32 values: skip a copy of up to --max-batch-bytes.
    return {reinterpret_cast<const float*>(bytes), count};
  }
  scratch->resize(count * sizeof(float));
  // operator new's alignment (at least 8) and a short string's inline buffer both suit float.
  auto* values = reinterpret_cast<float*>(scratch->data());
  kernels::DecodeToFloat32(batch.header.dtype, bytes, count, values);
  return {values, count};
}

int64_t DecodeScratchBytes(kernels::DType dtype, int64_t elements) {
  if (dtype == kernels::DType::kFloat32) return 0;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / sizeof(float);
  if (elements > kMax) return std::numeric_limits<int64_t>::max();  // saturates
  return elements * static_cast<int64_t>(sizeof(float));
}

}  // namespace qcal::server
