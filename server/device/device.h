// Which device the server's calibrators use: qcal-server --device auto|cpu|cuda.
//
//   QCAL_ASSIGN_OR_RETURN(std::shared_ptr<const CalibratorBackend> backend, SelectDevice("auto"));
//   backend->device();   // "cuda" where a GPU can be used, else "cpu"
#ifndef QCAL_SERVER_DEVICE_DEVICE_H_
#define QCAL_SERVER_DEVICE_DEVICE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/device/calibrator.h"

namespace qcal::server {

// Makes the GPU backend, or says why there is none.
using CudaBackendFactory =
    std::function<absl::StatusOr<std::shared_ptr<const CalibratorBackend>>()>;

// This build's factory: CudaBackend(0) (UNAVAILABLE "no CUDA device: <cudaGetErrorString>" without
// a usable GPU), or, in a build without CUDA, FAILED_PRECONDITION "no CUDA device: qcal-server was
// built without CUDA support".
CudaBackendFactory BuiltInCudaBackend();

// "cpu": the CPU backend. "cuda": the GPU's, or the factory's error (nothing falls back).
// "auto": the GPU's when the factory makes one, else the CPU's (AutoCpuFallbackMessage is logged
// at info level: on a machine without a GPU that is how auto works, not an error).
// INVALID_ARGUMENT for any other name.
absl::StatusOr<std::shared_ptr<const CalibratorBackend>> SelectDevice(
    absl::string_view device, const CudaBackendFactory& cuda = BuiltInCudaBackend());

// What --device auto logs when it takes the CPU, from the factory's error ("no CUDA device:
// REASON"): "running on the CPU (--device auto: no usable CUDA device: REASON)".
std::string AutoCpuFallbackMessage(const absl::Status& no_gpu);

}  // namespace qcal::server

#endif  // QCAL_SERVER_DEVICE_DEVICE_H_
