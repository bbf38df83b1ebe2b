// CUDA runtime errors as absl::Status, for the host side of kernels/cuda (internal).
//
//   QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
#ifndef QCAL_KERNELS_CUDA_INTERNAL_CUDA_STATUS_H_
#define QCAL_KERNELS_CUDA_INTERNAL_CUDA_STATUS_H_

#include <cuda_runtime_api.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace qcal::kernels::cuda::internal {

// RESOURCE_EXHAUSTED for cudaErrorMemoryAllocation, INTERNAL otherwise; the message names the
// call (`what`) and the error ("cudaErrorIllegalAddress: an illegal memory access ...").
// OK for cudaSuccess. Clears the calling thread's last error, so that a later launch check does
// not report this one again.
absl::Status CudaStatus(cudaError_t error, absl::string_view what);

// The status of the launch that just happened (cudaGetLastError), or of `error` when that
// failed first.
absl::Status LaunchStatus(cudaError_t error, absl::string_view what);

}  // namespace qcal::kernels::cuda::internal

#define QCAL_CUDA_RETURN_IF_ERROR(expr)                             \
  do {                                                              \
    const ::absl::Status qcal_cuda_status_ =                        \
        ::qcal::kernels::cuda::internal::CudaStatus((expr), #expr); \
    if (!qcal_cuda_status_.ok()) return qcal_cuda_status_;          \
  } while (false)

// For the launchers of launch.h, which return the launch's cudaError_t.
#define QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(expr)                        \
  do {                                                                \
    const ::absl::Status qcal_cuda_status_ =                          \
        ::qcal::kernels::cuda::internal::LaunchStatus((expr), #expr); \
    if (!qcal_cuda_status_.ok()) return qcal_cuda_status_;            \
  } while (false)

// Return-on-error helpers for absl::Status and absl::StatusOr (kernels/ has no shared ones; the
// names keep clear of server/base/status_util.h's).
#define QCAL_CUDA_RETURN_IF_NOT_OK(expr)                   \
  do {                                                     \
    const ::absl::Status qcal_cuda_status_ = (expr);       \
    if (!qcal_cuda_status_.ok()) return qcal_cuda_status_; \
  } while (false)

#define QCAL_CUDA_CONCAT_INNER_(a, b) a##b
#define QCAL_CUDA_CONCAT_(a, b) QCAL_CUDA_CONCAT_INNER_(a, b)
#define QCAL_CUDA_ASSIGN_OR_RETURN(lhs, expr) \
  QCAL_CUDA_ASSIGN_OR_RETURN_IMPL_(QCAL_CUDA_CONCAT_(qcal_cuda_statusor_, __LINE__), lhs, expr)
#define QCAL_CUDA_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                     \
  if (!statusor.ok()) return statusor.status();               \
  lhs = *std::move(statusor)

#endif  // QCAL_KERNELS_CUDA_INTERNAL_CUDA_STATUS_H_
