#include "kernels/cuda/internal/cuda_status.h"

#include "absl/strings/str_cat.h"

namespace qcal::kernels::cuda::internal {

absl::Status CudaStatus(cudaError_t error, absl::string_view what) {
  if (error == cudaSuccess) return absl::OkStatus();
  cudaGetLastError();
  const std::string message = absl::StrCat("CUDA call ", what, " failed: ", cudaGetErrorName(error),
                                           ": ", cudaGetErrorString(error));
  if (error == cudaErrorMemoryAllocation) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

absl::Status LaunchStatus(cudaError_t error, absl::string_view what) {
  if (error != cudaSuccess) return CudaStatus(error, what);
  return CudaStatus(cudaGetLastError(), what);
}

}  // namespace qcal::kernels::cuda::internal
