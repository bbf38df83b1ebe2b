// Idle batch buffers, kept for reuse so that a batch assembled from several chunks writes into
// pages that are already mapped instead of faulting in (and zero-filling) fresh ones: the first
// touch of a fresh page costs more than the copy into it. Bounded: at most `limit` bytes of
// capacity are kept, a buffer that would pass it is freed. Drain() empties it (IdleTrimmer does
// once the server has been idle for a while). Thread-safe.
//
//   std::string buffer = BufferPool::Global().Take(bytes);   // empty when none fits
//   ...
//   BufferPool::Global().Give(std::move(buffer));
#ifndef QCAL_SERVER_CORE_BUFFER_POOL_H_
#define QCAL_SERVER_CORE_BUFFER_POOL_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace qcal::server {

class BufferPool {
 public:
  // Bytes of idle buffers the process-wide pool keeps at most: the batch buffers of a few
  // streams of up to 64 MiB batches, so that back-to-back streams of a training job reuse them.
  static constexpr size_t kGlobalLimitBytes = size_t{256} << 20;

  // Buffers kept at most, whatever their size: Take scans them.
  static constexpr size_t kMaxBuffers = 64;

  explicit BufferPool(size_t limit_bytes) : limit_bytes_(limit_bytes) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // The pool of the process (kGlobalLimitBytes), shared by every stream.
  static BufferPool& Global();

  // The smallest idle buffer with at least `capacity` bytes of capacity, or an empty string
  // when none has. Its size and contents are what the last user left (clear() or resize() it):
  // a resize() within the old size then writes nothing.
  std::string Take(size_t capacity);
  // Keeps `buffer` if the pool stays within its limit (and kMaxBuffers); frees it otherwise.
  void Give(std::string buffer);
  // Frees every idle buffer; returns the bytes (capacity) freed.
  size_t Drain();

  // Capacity of the idle buffers now; never above limit_bytes().
  size_t bytes() const;
  size_t limit_bytes() const { return limit_bytes_; }

 private:
  // Constant after construction.
  const size_t limit_bytes_;

  mutable absl::Mutex mu_;
  std::vector<std::string> buffers_ ABSL_GUARDED_BY(mu_);
  // Sum of the buffers' capacities.
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_BUFFER_POOL_H_
