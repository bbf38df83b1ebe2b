#include "server/core/idle_trimmer.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <utility>

#include "server/core/buffer_pool.h"

namespace qcal::server {

IdleTrimmer::Activity::~Activity() {
  if (trimmer_ != nullptr) trimmer_->End();
}

IdleTrimmer::Activity& IdleTrimmer::Activity::operator=(Activity&& other) noexcept {
  if (this != &other) {
    if (trimmer_ != nullptr) trimmer_->End();
    trimmer_ = std::exchange(other.trimmer_, nullptr);
  }
  return *this;
}

IdleTrimmer::IdleTrimmer(absl::Duration delay, Metrics* metrics)
    : delay_(delay), metrics_(metrics), thread_([this] { Run(); }) {}

IdleTrimmer::~IdleTrimmer() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

IdleTrimmer::Activity IdleTrimmer::Begin() {
  absl::MutexLock lock(&mu_);
  ++active_;
  ++generation_;
  return Activity(this);
}

void IdleTrimmer::End() {
  absl::MutexLock lock(&mu_);
  if (--active_ == 0) pending_ = true;
}

int64_t IdleTrimmer::releases() const {
  absl::MutexLock lock(&mu_);
  return releases_;
}

void IdleTrimmer::Run() {
  absl::MutexLock lock(&mu_);
  for (;;) {
    const auto idle_and_pending = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || (active_ == 0 && pending_);
    };
    mu_.Await(absl::Condition(&idle_and_pending));
    if (stop_) return;
    // Idle now: release unless a stream begins (or stop) within delay_.
    const uint64_t generation = generation_;
    const auto busy_again = [this, generation]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || generation_ != generation;
    };
    if (mu_.AwaitWithTimeout(absl::Condition(&busy_again), delay_)) {
      if (stop_) return;
      continue;  // busy again; wait for its end
    }
    pending_ = false;
    mu_.Unlock();
    ReleaseMemory();
    mu_.Lock();
    ++releases_;
    if (metrics_ != nullptr) metrics_->MemoryReleased();
  }
}

void IdleTrimmer::ReleaseMemory() {
  BufferPool::Global().Drain();
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace qcal::server
