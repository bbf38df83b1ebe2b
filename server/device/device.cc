#include "server/device/device.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/device/cpu_calibrator.h"
#include "spdlog/spdlog.h"
#if QCAL_WITH_CUDA
#include "server/device/cuda_calibrator.h"
#endif

namespace qcal::server {

CudaBackendFactory BuiltInCudaBackend() {
#if QCAL_WITH_CUDA
  return [] { return CudaBackend(0); };
#else
  return []() -> absl::StatusOr<std::shared_ptr<const CalibratorBackend>> {
    return absl::FailedPreconditionError(
        "no CUDA device: qcal-server was built without CUDA support");
  };
#endif
}

std::string AutoCpuFallbackMessage(const absl::Status& no_gpu) {
  absl::string_view reason = no_gpu.message();
  absl::ConsumePrefix(&reason, "no CUDA device: ");
  return absl::StrCat("running on the CPU (--device auto: no usable CUDA device: ", reason, ")");
}

absl::StatusOr<std::shared_ptr<const CalibratorBackend>> SelectDevice(
    absl::string_view device, const CudaBackendFactory& cuda) {
  if (device == "cpu") return CpuBackend();
  if (device == "cuda") return cuda();
  if (device == "auto") {
    absl::StatusOr<std::shared_ptr<const CalibratorBackend>> gpu = cuda();
    if (gpu.ok()) return gpu;
    spdlog::info("{}", AutoCpuFallbackMessage(gpu.status()));
    return CpuBackend();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--device '", device, "' is not one of auto, cpu, cuda"));
}

}  // namespace qcal::server
