// One call's streams, staging buffers and device scratch (internal). A batch in pageable host
// memory goes through two pinned buffers in turn: while the device copies piece k and runs its
// kernels on one stream, the host fills the other buffer with piece k + 1 (using every core),
// and the kernels of piece k - 1 may still run on the other stream.
//
//   QCAL_CUDA_ASSIGN_OR_RETURN(StagerLease stager, context.Acquire());
//   QCAL_CUDA_RETURN_IF_NOT_OK(stager->ResetStats());
//   QCAL_CUDA_RETURN_IF_NOT_OK(stager->ForEachPiece(batch, [&](const void* data, int64_t offset,
//                                                         int64_t count, const Launch& launch) {
//     return LaunchAbsMax(data, batch.dtype, count, ..., launch);
//   }));
//   QCAL_CUDA_ASSIGN_OR_RETURN(DeviceBatchStats stats, stager->ReadStats());
#ifndef QCAL_KERNELS_CUDA_INTERNAL_STAGER_H_
#define QCAL_KERNELS_CUDA_INTERNAL_STAGER_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/batch_ref.h"
#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/device_buffer.h"
#include "kernels/cuda/internal/launch.h"

namespace qcal::kernels::cuda::internal {

enum class MemoryKind { kDevice, kPinnedHost, kPageableHost };

// Where `p` points, by cudaPointerGetAttributes (managed memory counts as device memory).
absl::StatusOr<MemoryKind> FindMemoryKind(const void* p);

// fn(device_data, offset, count, launch): elements [offset, offset + count) of the batch, now in
// device memory; enqueue work on launch.stream and return the launch's error.
using PieceFn = absl::FunctionRef<cudaError_t(const void* device_data, int64_t offset,
                                              int64_t count, const Launch& launch)>;

class Stager {
 public:
  // Streams, events and 2 x stage_bytes of pinned and of device memory.
  static absl::StatusOr<std::unique_ptr<Stager>> Create(const ContextImpl& context);
  ~Stager();
  Stager(const Stager&) = delete;
  Stager& operator=(const Stager&) = delete;

  // The main stream: work enqueued on it before ForEachPiece happens before every piece, and
  // every piece happens before work enqueued on it after.
  cudaStream_t stream() const { return streams_[0]; }
  Launch launch() const { return {streams_[0], context_.max_blocks()}; }

  // The batch accumulators in device memory, and their zeroing (on stream()).
  DeviceBatchStats* stats() const { return stats_->as<DeviceBatchStats>(); }
  absl::Status ResetStats();
  // `bins` zeroed 64-bit counters of device scratch (on stream()), kept across calls and grown
  // as needed. RESOURCE_EXHAUSTED when the device has no room.
  absl::StatusOr<unsigned long long*> ZeroedBins(int64_t bins);

  // Runs fn over pieces of `batch` that cover it in order (one piece for device memory).
  // Errors: those of CheckBatchRef and fn; INVALID_ARGUMENT for device memory not aligned to the
  // element size; INTERNAL for a CUDA failure (then everything enqueued is waited for).
  absl::Status ForEachPiece(const BatchRef& batch, PieceFn fn);

  // Waits for all work, then returns the accumulators.
  absl::StatusOr<DeviceBatchStats> ReadStats();
  // Waits for all work on both streams.
  absl::Status Synchronize();

 private:
  explicit Stager(const ContextImpl& context) : context_(context) {}

  const ContextImpl& context_;
  cudaStream_t streams_[2] = {nullptr, nullptr};
  // done_[k]: the last piece staged through buffers k is finished with them.
  cudaEvent_t done_[2] = {nullptr, nullptr};
  cudaEvent_t join_ = nullptr;
  std::unique_ptr<PinnedBuffer> pinned_[2];
  std::unique_ptr<DeviceBuffer> staged_[2];
  std::unique_ptr<DeviceBuffer> bins_;
  std::unique_ptr<DeviceBuffer> stats_;
  std::unique_ptr<PinnedBuffer> stats_host_;
};

}  // namespace qcal::kernels::cuda::internal

#endif  // QCAL_KERNELS_CUDA_INTERNAL_STAGER_H_
