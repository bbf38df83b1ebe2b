// A batch of tensor values that a CUDA kernel call reads, wherever it lives: in device memory,
// in pinned host memory, or in ordinary (pageable) host memory. The calls find out which with
// cudaPointerGetAttributes: device (and managed) memory is read in place, pinned host memory is
// copied to the device by DMA, and pageable memory is first copied into the Context's pinned
// staging buffers, piece by piece, so that the copy of one piece overlaps the kernels on the
// one before.
//
//   std::vector<uint16_t> halves = ...;   // float16 bits, little-endian
//   qcal::kernels::cuda::BatchRef batch{halves.data(), qcal::kernels::DType::kFloat16,
//                                       static_cast<int64_t>(halves.size())};
//
// Values are decoded to float32 on the device exactly as kernels::DecodeToFloat32 does.
#ifndef QCAL_KERNELS_CUDA_BATCH_REF_H_
#define QCAL_KERNELS_CUDA_BATCH_REF_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "kernels/dtype.h"

namespace qcal::kernels::cuda {

struct BatchRef {
  // `count` elements of `dtype`, little-endian; device memory must be aligned to the element
  // size.
  const void* data = nullptr;
  DType dtype = DType::kFloat32;
  int64_t count = 0;

  static BatchRef Float32(std::span<const float> values) {
    return {values.data(), DType::kFloat32, static_cast<int64_t>(values.size())};
  }
};

// INVALID_ARGUMENT for a negative count, a null pointer with a non-zero count, or a dtype that
// kernels::DTypeSize does not know.
absl::Status CheckBatchRef(const BatchRef& batch);

}  // namespace qcal::kernels::cuda

#endif  // QCAL_KERNELS_CUDA_BATCH_REF_H_
