#include "kernels/cuda/context.h"

#include <cuda_runtime_api.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/cuda_status.h"
#include "kernels/cuda/internal/stager.h"

namespace qcal::kernels::cuda {

absl::StatusOr<DeviceInfo> ProbeDevice(int ordinal) {
  int devices = 0;
  const cudaError_t error = cudaGetDeviceCount(&devices);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return absl::UnavailableError(absl::StrCat("no CUDA device: ", cudaGetErrorString(error)));
  }
  if (devices == 0) {
    return absl::UnavailableError("no CUDA device: the CUDA runtime found 0 devices");
  }
  if (ordinal < 0 || ordinal >= devices) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA device ", ordinal, " does not exist (",
                                                   devices, " device", devices == 1 ? "" : "s",
                                                   " present)"));
  }
  cudaDeviceProp properties;
  QCAL_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&properties, ordinal));
  return DeviceInfo{.ordinal = ordinal,
                    .name = properties.name,
                    .major = properties.major,
                    .minor = properties.minor,
                    .multiprocessors = properties.multiProcessorCount,
                    .total_memory = static_cast<int64_t>(properties.totalGlobalMem)};
}

absl::StatusOr<std::shared_ptr<Context>> Context::Create(int ordinal, Options options) {
  if (options.stage_bytes < (int64_t{64} << 10)) {
    return absl::InvalidArgumentError(
        absl::StrCat("stage_bytes ", options.stage_bytes, " is below 64 KiB"));
  }
  if (options.max_concurrent_calls < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_concurrent_calls ", options.max_concurrent_calls, " is below 1"));
  }
  absl::StatusOr<DeviceInfo> info = ProbeDevice(ordinal);
  if (!info.ok()) return info.status();
  auto impl = std::make_unique<internal::ContextImpl>(*std::move(info), options);
  QCAL_CUDA_RETURN_IF_NOT_OK(impl->Activate());
  return std::shared_ptr<Context>(new Context(std::move(impl)));
}

Context::Context(std::unique_ptr<internal::ContextImpl> impl) : impl_(std::move(impl)) {}

Context::~Context() = default;

const DeviceInfo& Context::info() const { return impl_->info(); }

absl::StatusOr<DeviceMemoryUse> Context::MemoryUse() const {
  QCAL_CUDA_RETURN_IF_NOT_OK(impl_->Activate());
  size_t free = 0;
  size_t total = 0;
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free, &total));
  return DeviceMemoryUse{.allocated = impl_->allocated().load(),
                         .free = static_cast<int64_t>(free),
                         .total = static_cast<int64_t>(total)};
}

namespace internal {

StagerLease::StagerLease(const ContextImpl* context, std::unique_ptr<Stager> stager)
    : context_(context), stager_(std::move(stager)) {}

StagerLease::StagerLease(StagerLease&& other) noexcept
    : context_(other.context_), stager_(std::move(other.stager_)) {}

StagerLease::~StagerLease() {
  if (stager_ == nullptr) return;
  // The next borrower may reuse every buffer at once.
  if (!stager_->Synchronize().ok()) {
    stager_.reset();  // a failed device: do not hand its streams out again
  }
  context_->Release(std::move(stager_));
}

ContextImpl::ContextImpl(DeviceInfo info, Context::Options options)
    : info_(std::move(info)), options_(options) {}

ContextImpl::~ContextImpl() {
  absl::MutexLock lock(&mu_);
  idle_.clear();
}

absl::Status ContextImpl::Activate() const {
  QCAL_CUDA_RETURN_IF_ERROR(cudaSetDevice(info_.ordinal));
  return absl::OkStatus();
}

absl::StatusOr<StagerLease> ContextImpl::Acquire() const {
  QCAL_CUDA_RETURN_IF_NOT_OK(Activate());
  {
    absl::MutexLock lock(&mu_);
    const auto can_borrow = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || lent_or_idle_ < options_.max_concurrent_calls;
    };
    mu_.Await(absl::Condition(&can_borrow));
    if (!idle_.empty()) {
      std::unique_ptr<Stager> stager = std::move(idle_.back());
      idle_.pop_back();
      return StagerLease(this, std::move(stager));
    }
    ++lent_or_idle_;
  }
  // Created outside the lock: it allocates device and pinned memory.
  absl::StatusOr<std::unique_ptr<Stager>> stager = Stager::Create(*this);
  if (!stager.ok()) {
    absl::MutexLock lock(&mu_);
    --lent_or_idle_;
    return stager.status();
  }
  return StagerLease(this, *std::move(stager));
}

void ContextImpl::Release(std::unique_ptr<Stager> stager) const {
  absl::MutexLock lock(&mu_);
  if (stager == nullptr) {
    --lent_or_idle_;
  } else {
    idle_.push_back(std::move(stager));
  }
}

}  // namespace internal
}  // namespace qcal::kernels::cuda
