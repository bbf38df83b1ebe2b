#include "server/core/buffer_pool.h"

#include <utility>

namespace qcal::server {

BufferPool& BufferPool::Global() {
  static BufferPool* pool = new BufferPool(kGlobalLimitBytes);  // never destroyed: streams may
                                                                // outlive main
  return *pool;
}

std::string BufferPool::Take(size_t capacity) {
  std::string buffer;
  {
    absl::MutexLock lock(&mu_);
    auto best = buffers_.end();
    for (auto it = buffers_.begin(); it != buffers_.end(); ++it) {
      if (it->capacity() >= capacity &&
          (best == buffers_.end() || it->capacity() < best->capacity())) {
        best = it;
      }
    }
    if (best == buffers_.end()) return {};
    buffer = std::move(*best);
    *best = std::move(buffers_.back());
    buffers_.pop_back();
    bytes_ -= buffer.capacity();
  }
  return buffer;
}

void BufferPool::Give(std::string buffer) {
  if (buffer.capacity() <= std::string().capacity()) return;  // no heap buffer to keep
  absl::MutexLock lock(&mu_);
  if (bytes_ + buffer.capacity() > limit_bytes_ || buffers_.size() >= kMaxBuffers)
    return;  // freed on return, outside the pool
  bytes_ += buffer.capacity();
  buffers_.push_back(std::move(buffer));
}

size_t BufferPool::Drain() {
  std::vector<std::string> dropped;
  size_t freed = 0;
  {
    absl::MutexLock lock(&mu_);
    dropped.swap(buffers_);
    freed = bytes_;
    bytes_ = 0;
  }
  return freed;  // `dropped` is freed here, outside the lock
}

size_t BufferPool::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace qcal::server
