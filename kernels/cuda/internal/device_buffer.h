// Owned device and pinned host memory (internal), counted against their Context's
// DeviceMemoryUse::allocated.
//
//   QCAL_CUDA_ASSIGN_OR_RETURN(std::unique_ptr<DeviceBuffer> counts,
//                         DeviceBuffer::Allocate(impl, bins * sizeof(uint64_t)));
#ifndef QCAL_KERNELS_CUDA_INTERNAL_DEVICE_BUFFER_H_
#define QCAL_KERNELS_CUDA_INTERNAL_DEVICE_BUFFER_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace qcal::kernels::cuda::internal {

class ContextImpl;

class DeviceBuffer {
 public:
  // `bytes` (>= 1) of device memory on the context's device, uninitialised.
  // RESOURCE_EXHAUSTED when the device has no room; INTERNAL for other CUDA failures.
  static absl::StatusOr<std::unique_ptr<DeviceBuffer>> Allocate(const ContextImpl& context,
                                                                int64_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  int64_t bytes() const { return bytes_; }

 private:
  DeviceBuffer(void* data, int64_t bytes, int ordinal, std::atomic<int64_t>* allocated)
      : data_(data), bytes_(bytes), ordinal_(ordinal), allocated_(allocated) {}

  void* const data_;
  const int64_t bytes_;
  const int ordinal_;
  std::atomic<int64_t>* const allocated_;
};

// Page-locked host memory (cudaHostAlloc), which the copy engines read and write directly.
class PinnedBuffer {
 public:
  static absl::StatusOr<std::unique_ptr<PinnedBuffer>> Allocate(const ContextImpl& context,
                                                                int64_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  int64_t bytes() const { return bytes_; }

 private:
  PinnedBuffer(void* data, int64_t bytes) : data_(data), bytes_(bytes) {}

  void* const data_;
  const int64_t bytes_;
};

}  // namespace qcal::kernels::cuda::internal

#endif  // QCAL_KERNELS_CUDA_INTERNAL_DEVICE_BUFFER_H_
