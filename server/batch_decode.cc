#include "server/batch_decode.h"

#include <bit>
#include <cstdint>

namespace qcal::server {

std::span<const float> DecodeBatch(const Batch& batch, std::vector<float>* scratch) {
  const size_t count = static_cast<size_t>(batch.elements);
  const auto* bytes = reinterpret_cast<const uint8_t*>(batch.bytes.data());
  if (batch.header.dtype == kernels::DType::kFloat32 &&
      std::endian::native == std::endian::little &&
      reinterpret_cast<uintptr_t>(bytes) % alignof(float) == 0) {
    // The wire bytes are the float32 values: skip a copy of up to --max-batch-bytes.
    return {reinterpret_cast<const float*>(bytes), count};
  }
  scratch->resize(count);
  kernels::DecodeToFloat32(batch.header.dtype, bytes, count, scratch->data());
  return {scratch->data(), count};
}

}  // namespace qcal::server
