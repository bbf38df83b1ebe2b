// Calibrators whose state lives on a GPU (kernels/cuda: cuda::MaxCalibrator, cuda::Histogram)
// behind the Calibrator interface (calibrator.h): the server's --device cuda. Batches arrive in
// host memory and go to the device through the Context's pinned staging buffers on two streams,
// so that copying one piece overlaps the kernels on the previous one; amax searches run on the
// device. Results equal the CPU backend's. Built only with CUDA (QCAL_WITH_CUDA).
//
//   QCAL_ASSIGN_OR_RETURN(std::shared_ptr<const CalibratorBackend> gpu, CudaBackend(0));
#ifndef QCAL_SERVER_DEVICE_CUDA_CALIBRATOR_H_
#define QCAL_SERVER_DEVICE_CUDA_CALIBRATOR_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/device/calibrator.h"

namespace qcal::server {

// The backend of CUDA device `ordinal`. Errors: those of kernels::cuda::Context::Create
// (UNAVAILABLE "no CUDA device: <reason>" without a usable GPU).
absl::StatusOr<std::shared_ptr<const CalibratorBackend>> CudaBackend(int ordinal = 0);

}  // namespace qcal::server

#endif  // QCAL_SERVER_DEVICE_CUDA_CALIBRATOR_H_
