// The GPU that the CUDA kernels run on, and what every kernel call borrows from it: streams,
// pinned staging buffers and device scratch, shared by all calibrators of one Context.
//
//   absl::StatusOr<std::shared_ptr<qcal::kernels::cuda::Context>> gpu =
//       qcal::kernels::cuda::Context::Create(/*ordinal=*/0);
//   if (!gpu.ok()) ...;   // UNAVAILABLE "no CUDA device: CUDA driver version is insufficient ..."
//   (*gpu)->info().name;  // "NVIDIA H200"
//
// This header compiles without nvcc and without CUDA's headers: server code includes it.
// A Context is thread-safe. Objects made from it (calibrators) keep it alive through a
// shared_ptr; each such object is used from one thread at a time, like its CPU twin.
#ifndef QCAL_KERNELS_CUDA_CONTEXT_H_
#define QCAL_KERNELS_CUDA_CONTEXT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace qcal::kernels::cuda {

namespace internal {
class ContextImpl;
}  // namespace internal

struct DeviceInfo {
  int ordinal = 0;
  // cudaDeviceProp::name, e.g. "NVIDIA H200".
  std::string name{};
  // Compute capability, e.g. 9.0 for Hopper.
  int major = 0;
  int minor = 0;
  int multiprocessors = 0;
  // Bytes of device memory.
  int64_t total_memory = 0;
};

// Bytes of device memory: what this Context's objects hold now (calibrator state, scratch,
// staging buffers), and the device's free and total memory as cudaMemGetInfo reports them.
struct DeviceMemoryUse {
  int64_t allocated = 0;
  int64_t free = 0;
  int64_t total = 0;
};

// Whether device `ordinal` can be used, without creating a Context.
// UNAVAILABLE "no CUDA device: <cudaGetErrorString>" when the runtime finds no usable device
// (no driver, no GPU, or a driver older than the runtime); INVALID_ARGUMENT for an ordinal
// beyond the devices present.
absl::StatusOr<DeviceInfo> ProbeDevice(int ordinal = 0);

struct ContextOptions {
  // Bytes of each of the two pinned host buffers (and of the two device buffers they are
  // copied into) through which one calibrator call streams host data to the device.
  int64_t stage_bytes = int64_t{8} << 20;
  // Calls that run at once; a further caller waits for a free set of staging buffers.
  int max_concurrent_calls = 4;
};

class Context {
 public:
  using Options = ContextOptions;

  // Errors: those of ProbeDevice; INVALID_ARGUMENT for stage_bytes < 64 KiB or
  // max_concurrent_calls < 1.
  static absl::StatusOr<std::shared_ptr<Context>> Create(int ordinal = 0, Options options = {});

  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const DeviceInfo& info() const;
  // INTERNAL when cudaMemGetInfo fails.
  absl::StatusOr<DeviceMemoryUse> MemoryUse() const;

  // For the library's own classes.
  internal::ContextImpl& impl() const { return *impl_; }

 private:
  explicit Context(std::unique_ptr<internal::ContextImpl> impl);

  const std::unique_ptr<internal::ContextImpl> impl_;
};

}  // namespace qcal::kernels::cuda

#endif  // QCAL_KERNELS_CUDA_CONTEXT_H_
