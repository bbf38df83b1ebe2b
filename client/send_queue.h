// The bounded hand-off between Record() callers (producers, any thread) and a session's
// background sender (the one consumer), and the session's resend buffer. Pure synchronisation,
// no gRPC: every batch is numbered (its exactly-once sequence, calibration.proto
// RecordRequest.sequence) and held until the server says it is durable, so that the sender can
// resend it on a new stream after a broken one; the sender reports what each stream and Commit
// ended with, and the queue turns that into blocking, flushing and the "error surfaces at the
// next Record() or Flush()" rule.
#ifndef QCAL_CLIENT_SEND_QUEUE_H_
#define QCAL_CLIENT_SEND_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/batch.h"
#include "qcal/client.h"

namespace qcal::internal {

class SendQueue {
 public:
  // `capacity_bytes`: data bytes held (queued, or sent and not yet durable) before Push()
  // blocks.
  explicit SendQueue(size_t capacity_bytes);
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  // --- Producer side (any thread) ---

  // Returns the pending send error, if any, clearing it and queuing nothing. Otherwise blocks
  // until nothing is held or `batch` fits in the capacity (or an error arrives, returned the
  // same way), then numbers it (the next sequence) and queues it.
  absl::Status Push(Batch batch);
  // Blocks until every batch pushed before the call has been applied (the consumer reported a
  // flush, FlushDone, requested after them) and, with `commit`, made durable; then returns the
  // pending error (clearing it), else the sequences.
  absl::StatusOr<CommitResult> Flush(bool commit = false);
  // Asks the consumer to send what is queued, flush, and stop (Next() returns kClose last).
  void Close();

  SessionStats Stats() const;

  // --- Consumer side (the sender thread) ---

  struct Work {
    enum Kind { kBatch, kSync, kFlush, kClose } kind;
    // kBatch: the next batch to write on the stream; it stays held (and its bytes counted) until
    // a sequence at or above its own is durable.
    const Batch* batch = nullptr;
    // kFlush: the flush asks for a Commit as well.
    bool commit = false;
  };
  // Blocks until there is work: batches first; then kSync when a Push() waits for room and every
  // held batch is written (close the stream and Commit so that the held batches become durable
  // and are freed); then a requested flush; then close.
  Work Next();
  // The batch Next() returned was written to the stream.
  void Written();
  // A Record stream ended (closed, `ok`, or broken): `response` is the server's RecordResponse
  // (on an error the one in the status details). The held batches at or below its
  // applied_sequence not counted yet go to the applied totals (once each, whichever stream
  // applied them: a batch the server drops as a duplicate was applied by a stream that may have
  // ended without saying so, an idle one closed with CANCELLED; one applied again after a server
  // lost it counts once); those at or below its durable_sequence are freed. A stream closed OK
  // whose response has no applied_sequence came from a server without sessions (before
  // exactly-once): every batch written is applied and freed (a resend would count twice), and
  // legacy() turns true.
  void StreamClosed(const v1::RecordResponse& response, bool ok);
  // A Commit said `durable` (and `applied`): counts the batches at or below `applied` as
  // StreamClosed does, frees those at or below `durable`.
  void Committed(int64_t applied, int64_t durable);
  // A Commit's answer says the server holds less than it had applied (`applied` below the
  // session's applied sequence): it restarted before those batches were written. The session's
  // applied sequence falls back to the server's; the caller then resends the held batches
  // (Rewind; the server drops what it holds). False when the server holds everything it had
  // applied.
  bool ServerLost(int64_t applied);
  // A stream broke and a new one starts: every held batch is written again from the first (the
  // server drops those it applied already).
  void Rewind();
  // An error ends the session's sending: `status` becomes the pending error (unless one is
  // pending already); every held batch is dropped, counting those above the last applied
  // sequence in dropped_batches. The numbering starts again at 1 (the sender takes a new
  // session id: a dropped batch may have been applied unseen, so its sequence is not reused).
  void Fail(const absl::Status& status);
  // The kSync asked for is done.
  void SyncDone();
  // The flush asked for when Next() returned kFlush (and any asked before it) is done: OK, or
  // the error it ended with.
  void FlushDone(const absl::Status& status);

  // The last sequences the server reported for this session, and the batches held (numbered,
  // not yet known durable).
  int64_t applied_sequence() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t durable_sequence() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t held_batches() const ABSL_LOCKS_EXCLUDED(mu_);
  // Held batches written to a stream (sent, not yet known durable).
  int64_t unconfirmed_batches() const ABSL_LOCKS_EXCLUDED(mu_);
  // The server keeps no sessions: a broken stream cannot be resent safely.
  bool legacy() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Held {
    Batch batch;
    // Written to some stream before (a later write is a resend).
    bool written = false;
    // Known applied and counted in the applied totals.
    bool counted = false;
  };
  // Records `status` as the pending error unless one is already pending.
  void SetError(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Returns and clears the pending error.
  absl::Status TakeError() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts the held batches at or below applied_ not counted yet in the applied totals.
  void CountApplied() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees the held batches at or below durable_.
  void FreeDurable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const size_t capacity_bytes_;

  mutable absl::Mutex mu_;
  // Numbered batches not yet known durable, in sequence order; the first next_ were written to
  // the current stream.
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  size_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t durable_ ABSL_GUARDED_BY(mu_) = 0;
  size_t blocked_pushes_ ABSL_GUARDED_BY(mu_) = 0;
  // A kSync may be due: set when a Push() starts waiting, a batch is written or the queue
  // rewinds; cleared when a sync is served.
  bool sync_due_ ABSL_GUARDED_BY(mu_) = false;
  // Flush tickets: Flush() takes ++flush_requested_ and waits for flush_done_ to reach it;
  // commit_requested_ is the last ticket that asked for a Commit.
  uint64_t flush_requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t commit_requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t flush_done_ ABSL_GUARDED_BY(mu_) = 0;
  // The ticket the consumer is serving (valid between Next() == kFlush and FlushDone()).
  uint64_t flush_serving_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool legacy_ ABSL_GUARDED_BY(mu_) = false;
  // First send error not yet returned by Push() or Flush().
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  SessionStats totals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_SEND_QUEUE_H_
