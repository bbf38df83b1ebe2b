#include "kernels/cuda/internal/device_buffer.h"

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/cuda_status.h"

namespace qcal::kernels::cuda::internal {

absl::StatusOr<std::unique_ptr<DeviceBuffer>> DeviceBuffer::Allocate(const ContextImpl& context,
                                                                     int64_t bytes) {
  if (bytes < 1)
    return absl::InvalidArgumentError(absl::StrCat("device buffer of ", bytes, " bytes"));
  QCAL_CUDA_RETURN_IF_NOT_OK(context.Activate());
  void* data = nullptr;
  const cudaError_t error = cudaMalloc(&data, static_cast<size_t>(bytes));
  if (error != cudaSuccess) {
    return CudaStatus(error, absl::StrCat("cudaMalloc of ", bytes, " bytes"));
  }
  context.allocated().fetch_add(bytes);
  return std::unique_ptr<DeviceBuffer>(
      new DeviceBuffer(data, bytes, context.info().ordinal, &context.allocated()));
}

DeviceBuffer::~DeviceBuffer() {
  // cudaFree needs the owning device current; nothing can be reported from here.
  cudaSetDevice(ordinal_);
  cudaFree(data_);
  cudaGetLastError();
  allocated_->fetch_sub(bytes_);
}

absl::StatusOr<std::unique_ptr<PinnedBuffer>> PinnedBuffer::Allocate(const ContextImpl& context,
                                                                     int64_t bytes) {
  if (bytes < 1)
    return absl::InvalidArgumentError(absl::StrCat("pinned buffer of ", bytes, " bytes"));
  QCAL_CUDA_RETURN_IF_NOT_OK(context.Activate());
  void* data = nullptr;
  const cudaError_t error = cudaHostAlloc(&data, static_cast<size_t>(bytes), cudaHostAllocDefault);
  if (error != cudaSuccess) {
    return CudaStatus(error, absl::StrCat("cudaHostAlloc of ", bytes, " bytes"));
  }
  return std::unique_ptr<PinnedBuffer>(new PinnedBuffer(data, bytes));
}

PinnedBuffer::~PinnedBuffer() {
  cudaFreeHost(data_);
  cudaGetLastError();
}

}  // namespace qcal::kernels::cuda::internal
