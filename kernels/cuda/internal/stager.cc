#include "kernels/cuda/internal/stager.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/internal/cuda_status.h"
#include "kernels/parallel.h"

namespace qcal::kernels::cuda::internal {
namespace {

// memcpy with every core: one thread fills a pinned buffer at well under PCIe speed.
void ParallelCopy(void* dst, const void* src, int64_t bytes) {
  const int chunks = ChunksFor(bytes, int64_t{1} << 20);
  ParallelFor(bytes, chunks, [&](int, int64_t begin, int64_t end) {
    std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin,
                static_cast<size_t>(end - begin));
  });
}

}  // namespace

absl::StatusOr<MemoryKind> FindMemoryKind(const void* p) {
  cudaPointerAttributes attributes;
  const cudaError_t error = cudaPointerGetAttributes(&attributes, p);
  if (error == cudaErrorInvalidValue) {
    cudaGetLastError();  // runtimes before CUDA 11 refuse memory they do not know
    return MemoryKind::kPageableHost;
  }
  QCAL_CUDA_RETURN_IF_ERROR(error);
  switch (attributes.type) {
    case cudaMemoryTypeDevice:
    case cudaMemoryTypeManaged:
      return MemoryKind::kDevice;
    case cudaMemoryTypeHost:
      return MemoryKind::kPinnedHost;
    default:
      return MemoryKind::kPageableHost;
  }
}

absl::StatusOr<std::unique_ptr<Stager>> Stager::Create(const ContextImpl& context) {
  QCAL_CUDA_RETURN_IF_NOT_OK(context.Activate());
  std::unique_ptr<Stager> stager(new Stager(context));
  const int64_t stage_bytes = context.options().stage_bytes;
  for (int k = 0; k < 2; ++k) {
    QCAL_CUDA_RETURN_IF_ERROR(
        cudaStreamCreateWithFlags(&stager->streams_[k], cudaStreamNonBlocking));
    QCAL_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&stager->done_[k], cudaEventDisableTiming));
    QCAL_CUDA_ASSIGN_OR_RETURN(stager->pinned_[k], PinnedBuffer::Allocate(context, stage_bytes));
    QCAL_CUDA_ASSIGN_OR_RETURN(stager->staged_[k], DeviceBuffer::Allocate(context, stage_bytes));
  }
  QCAL_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&stager->join_, cudaEventDisableTiming));
  QCAL_CUDA_ASSIGN_OR_RETURN(stager->stats_,
                             DeviceBuffer::Allocate(context, sizeof(DeviceBatchStats)));
  QCAL_CUDA_ASSIGN_OR_RETURN(stager->stats_host_,
                             PinnedBuffer::Allocate(context, sizeof(DeviceBatchStats)));
  return stager;
}

Stager::~Stager() {
  cudaSetDevice(context_.info().ordinal);
  for (int k = 0; k < 2; ++k) {
    if (streams_[k] != nullptr) cudaStreamSynchronize(streams_[k]);
  }
  for (int k = 0; k < 2; ++k) {
    if (done_[k] != nullptr) cudaEventDestroy(done_[k]);
    if (streams_[k] != nullptr) cudaStreamDestroy(streams_[k]);
  }
  if (join_ != nullptr) cudaEventDestroy(join_);
  cudaGetLastError();
}

absl::Status Stager::ResetStats() {
  QCAL_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(stats_->data(), 0, sizeof(DeviceBatchStats), streams_[0]));
  return absl::OkStatus();
}

absl::StatusOr<unsigned long long*> Stager::ZeroedBins(int64_t bins) {
  const int64_t bytes = std::max<int64_t>(bins, 1) * static_cast<int64_t>(sizeof(uint64_t));
  if (bins_ == nullptr || bins_->bytes() < bytes) {
    bins_.reset();  // free first: the old scratch may be most of what the device has left
    // Waits for nothing: the lease began idle and only this call's work uses the scratch.
    QCAL_CUDA_ASSIGN_OR_RETURN(bins_, DeviceBuffer::Allocate(context_, bytes));
  }
  QCAL_CUDA_RETURN_IF_ERROR(
      cudaMemsetAsync(bins_->data(), 0, static_cast<size_t>(bytes), streams_[0]));
  return bins_->as<unsigned long long>();
}

absl::Status Stager::ForEachPiece(const BatchRef& batch, PieceFn fn) {
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckBatchRef(batch));
  if (batch.count == 0) return absl::OkStatus();
  const int64_t element_bytes = static_cast<int64_t>(DTypeSize(batch.dtype));
  absl::StatusOr<MemoryKind> kind = FindMemoryKind(batch.data);
  if (!kind.ok()) return kind.status();
  if (*kind == MemoryKind::kDevice) {
    if (reinterpret_cast<uintptr_t>(batch.data) % static_cast<uintptr_t>(element_bytes) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("device batch of ", std::string(DTypeName(batch.dtype)),
                       " is not aligned to its element size (", element_bytes, " bytes)"));
    }
    return LaunchStatus(fn(batch.data, 0, batch.count, launch()), "kernel launch");
  }

  absl::Status status = [&]() -> absl::Status {
    // Stream 1 starts after what stream 0 holds (zeroed scratch, say).
    QCAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(join_, streams_[0]));
    QCAL_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(streams_[1], join_, 0));
    const int64_t piece_elements = context_.options().stage_bytes / element_bytes;
    const char* host = static_cast<const char*>(batch.data);
    int64_t piece = 0;
    for (int64_t offset = 0; offset < batch.count; offset += piece_elements, ++piece) {
      const int k = static_cast<int>(piece % 2);
      const int64_t count = std::min(piece_elements, batch.count - offset);
      const int64_t bytes = count * element_bytes;
      if (piece >= 2) QCAL_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(done_[k]));
      const void* source = host + offset * element_bytes;
      if (*kind == MemoryKind::kPageableHost) {
        ParallelCopy(pinned_[k]->data(), source, bytes);
        source = pinned_[k]->data();
      }
      QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(staged_[k]->data(), source,
                                                static_cast<size_t>(bytes), cudaMemcpyHostToDevice,
                                                streams_[k]));
      QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(
          fn(staged_[k]->data(), offset, count, Launch{streams_[k], context_.max_blocks()}));
      QCAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(done_[k], streams_[k]));
    }
    // Stream 0 goes on after both.
    QCAL_CUDA_RETURN_IF_ERROR(cudaEventRecord(join_, streams_[1]));
    QCAL_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(streams_[0], join_, 0));
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    // No copy may still read a buffer the next call reuses.
    Synchronize().IgnoreError();
  }
  return status;
}

absl::StatusOr<DeviceBatchStats> Stager::ReadStats() {
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(stats_host_->data(), stats_->data(),
                                            sizeof(DeviceBatchStats), cudaMemcpyDeviceToHost,
                                            streams_[0]));
  QCAL_CUDA_RETURN_IF_NOT_OK(Synchronize());
  return *stats_host_->as<DeviceBatchStats>();
}

absl::Status Stager::Synchronize() {
  QCAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(streams_[0]));
  QCAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(streams_[1]));
  return absl::OkStatus();
}

}  // namespace qcal::kernels::cuda::internal
