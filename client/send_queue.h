// The bounded hand-off between Record() callers (producers, any thread) and a session's
// background sender (the one consumer). Pure synchronisation, no gRPC: the sender reports what
// each piece of work ended with, and the queue turns that into blocking, flushing and the
// "error surfaces at the next Record() or Flush()" rule.
#ifndef QCAL_CLIENT_SEND_QUEUE_H_
#define QCAL_CLIENT_SEND_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "client/batch.h"
#include "qcal/client.h"

namespace qcal::internal {

class SendQueue {
 public:
  // `capacity_bytes`: data bytes held (queued or being sent) before Push() blocks.
  explicit SendQueue(size_t capacity_bytes);
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  // --- Producer side (any thread) ---

  // Returns the pending send error, if any, clearing it and queuing nothing. Otherwise blocks
  // until the queue is empty or `batch` fits in the capacity (or an error arrives, returned the
  // same way), then queues it.
  absl::Status Push(Batch batch);
  // Blocks until every batch pushed before the call has been handled and the consumer has
  // reported a flush (FlushDone) requested after them; then returns, and clears, the pending
  // error.
  absl::Status Flush();
  // Asks the consumer to send what is queued, flush, and stop (Next() returns kClose last).
  void Close();

  SessionStats Stats() const;

  // --- Consumer side (the sender thread) ---

  struct Work {
    enum Kind { kBatch, kFlush, kClose } kind;
    // kBatch: the front batch; it stays queued (and its bytes counted) until BatchDone().
    const Batch* batch = nullptr;
  };
  // Blocks until there is work: batches first, then a requested flush, then close.
  Work Next();
  // The front batch was written (OK) or its stream failed: then `status` becomes the pending
  // error (unless one is pending already) and every batch still queued is dropped.
  void BatchDone(const absl::Status& status);
  // A Record stream ended (closed by a flush, or broken): the server applied `applied` of its
  // batches (RecordResponse, or on an error the one in the status details) and `unapplied` of
  // the batches written to it were not applied (they count as dropped).
  void StreamClosed(const v1::RecordResponse& applied, int64_t unapplied);
  // The flush asked for when Next() returned kFlush (and any asked before it) is done: the stream
  // was closed with `status`.
  void FlushDone(const absl::Status& status);

 private:
  // Records `status` as the pending error unless one is already pending. Needs mu_.
  void SetError(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns and clears the pending error. Needs mu_.
  absl::Status TakeError() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const size_t capacity_bytes_;

  mutable absl::Mutex mu_;
  std::deque<Batch> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t blocked_pushes_ ABSL_GUARDED_BY(mu_) = 0;
  // Flush tickets: Flush() takes ++flush_requested_ and waits for flush_done_ to reach it.
  uint64_t flush_requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t flush_done_ ABSL_GUARDED_BY(mu_) = 0;
  // The ticket the consumer is serving (valid between Next() == kFlush and FlushDone()).
  uint64_t flush_serving_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  // First send error not yet returned by Push() or Flush().
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  SessionStats totals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_SEND_QUEUE_H_
