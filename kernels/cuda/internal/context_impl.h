// What a Context holds (internal): the device, the memory count, and a pool of Stagers, one per
// call in flight.
#ifndef QCAL_KERNELS_CUDA_INTERNAL_CONTEXT_IMPL_H_
#define QCAL_KERNELS_CUDA_INTERNAL_CONTEXT_IMPL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "kernels/cuda/context.h"
#include "kernels/cuda/internal/launch.h"

namespace qcal::kernels::cuda::internal {

class Stager;
class ContextImpl;

// A Stager borrowed for one call; back to the pool (idle: its streams synchronized) when it ends.
class StagerLease {
 public:
  StagerLease(const ContextImpl* context, std::unique_ptr<Stager> stager);
  StagerLease(StagerLease&& other) noexcept;
  StagerLease& operator=(StagerLease&&) = delete;
  ~StagerLease();

  Stager& operator*() const { return *stager_; }
  Stager* operator->() const { return stager_.get(); }

 private:
  const ContextImpl* context_;
  std::unique_ptr<Stager> stager_;
};

class ContextImpl {
 public:
  ContextImpl(DeviceInfo info, Context::Options options);
  ~ContextImpl();
  ContextImpl(const ContextImpl&) = delete;
  ContextImpl& operator=(const ContextImpl&) = delete;

  const DeviceInfo& info() const { return info_; }
  const Context::Options& options() const { return options_; }
  // Device bytes held by this context's buffers.
  std::atomic<int64_t>& allocated() const { return allocated_; }
  // Grid cap for 256-thread blocks: enough to fill every multiprocessor.
  int max_blocks() const { return info_.multiprocessors * 8; }

  // Makes the device current on the calling thread (cudaSetDevice); INTERNAL on failure.
  absl::Status Activate() const;
  // Activates the device and lends a Stager, waiting while options().max_concurrent_calls are
  // lent. Errors: those of Activate and Stager::Create.
  absl::StatusOr<StagerLease> Acquire() const;

 private:
  friend class StagerLease;
  void Release(std::unique_ptr<Stager> stager) const;

  // Constant after construction.
  const DeviceInfo info_;
  const Context::Options options_;

  mutable std::atomic<int64_t> allocated_{0};
  mutable absl::Mutex mu_;
  mutable std::vector<std::unique_ptr<Stager>> idle_ ABSL_GUARDED_BY(mu_);
  mutable int lent_or_idle_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace qcal::kernels::cuda::internal

#endif  // QCAL_KERNELS_CUDA_INTERNAL_CONTEXT_IMPL_H_
