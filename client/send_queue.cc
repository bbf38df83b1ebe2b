#include "client/send_queue.h"

#include <algorithm>
#include <utility>

namespace qcal::internal {

SendQueue::SendQueue(size_t capacity_bytes) : capacity_bytes_(capacity_bytes) {}

absl::Status SendQueue::Push(Batch batch) {
  const size_t bytes = batch.bytes();
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return TakeError();
  auto has_room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || held_.empty() || held_bytes_ + bytes <= capacity_bytes_;
  };
  if (!has_room()) {
    ++blocked_pushes_;
    sync_due_ = true;
    mu_.Await(absl::Condition(&has_room));
    --blocked_pushes_;
  }
  if (!error_.ok()) return TakeError();
  held_bytes_ += bytes;
  batch.sequence = ++last_sequence_;
  held_.push_back({.batch = std::move(batch)});
  return absl::OkStatus();
}

absl::StatusOr<CommitResult> SendQueue::Flush(bool commit) {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = ++flush_requested_;
  if (commit) commit_requested_ = ticket;
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return flush_done_ >= ticket; };
  mu_.Await(absl::Condition(&done));
  if (absl::Status error = TakeError(); !error.ok()) return error;
  return CommitResult{.applied_sequence = applied_, .durable_sequence = durable_};
}

void SendQueue::Close() {
  absl::MutexLock lock(&mu_);
  closing_ = true;
}

SessionStats SendQueue::Stats() const {
  absl::MutexLock lock(&mu_);
  SessionStats stats = totals_;
  stats.queued_batches = held_.size() - next_;
  stats.unconfirmed_batches = next_;
  stats.queued_bytes = held_bytes_;
  stats.blocked_records = blocked_pushes_;
  stats.last_sequence = last_sequence_;
  stats.applied_sequence = applied_;
  stats.durable_sequence = durable_;
  return stats;
}

SendQueue::Work SendQueue::Next() {
  absl::MutexLock lock(&mu_);
  auto sync = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return sync_due_ && blocked_pushes_ > 0 && next_ == held_.size() && !held_.empty();
  };
  auto has_work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return next_ < held_.size() || sync() || flush_requested_ > flush_done_ || closing_;
  };
  mu_.Await(absl::Condition(&has_work));
  if (next_ < held_.size()) return {Work::kBatch, &held_[next_].batch};
  if (sync()) {
    sync_due_ = false;
    return {Work::kSync};
  }
  if (flush_requested_ > flush_done_) {
    flush_serving_ = flush_requested_;
    return {Work::kFlush, nullptr, commit_requested_ > flush_done_};
  }
  return {Work::kClose};
}

void SendQueue::Written() {
  absl::MutexLock lock(&mu_);
  Held& held = held_[next_++];
  if (held.written) ++totals_.resent_batches;
  held.written = true;
  sync_due_ = true;
}

void SendQueue::StreamClosed(const v1::RecordResponse& response, bool ok) {
  absl::MutexLock lock(&mu_);
  if (ok && response.applied_sequence() == 0 && next_ > 0) {
    legacy_ = true;
    for (; next_ > 0; --next_) {
      held_bytes_ -= held_.front().batch.bytes();
      held_.pop_front();
    }
  }
  if (response.applied_sequence() == 0) {
    // No session sequences (a server before exactly-once): the server's totals are all there is.
    totals_.applied_batches += response.batches();
    totals_.applied_elements += response.elements();
    totals_.applied_bytes += response.bytes();
    totals_.applied_partials += response.partials();
  }
  // Only the server sees which values are not finite: its count per stream (a batch applied again
  // by a server that lost it counts twice here, one applied by a stream that ended unreported
  // not at all).
  totals_.applied_nonfinite += response.nonfinite();
  totals_.duplicate_batches += response.duplicates();
  applied_ = std::max(applied_, response.applied_sequence());
  durable_ = std::max(durable_, response.durable_sequence());
  CountApplied();
  FreeDurable();
}

void SendQueue::Committed(int64_t applied, int64_t durable) {
  absl::MutexLock lock(&mu_);
  applied_ = std::max(applied_, applied);
  durable_ = std::max(durable_, durable);
  CountApplied();
  FreeDurable();
}

bool SendQueue::ServerLost(int64_t applied) {
  absl::MutexLock lock(&mu_);
  if (applied >= applied_) return false;
  applied_ = applied;
  durable_ = std::min(durable_, applied);
  return true;
}

void SendQueue::Rewind() {
  absl::MutexLock lock(&mu_);
  next_ = 0;
  ++totals_.reconnects;
  sync_due_ = true;
}

void SendQueue::Fail(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  SetError(status);
  for (const Held& held : held_) {
    if (held.batch.sequence > applied_) ++totals_.dropped_batches;
  }
  held_.clear();
  next_ = 0;
  held_bytes_ = 0;
  // The sender goes on under a new session id: numbering starts again.
  last_sequence_ = 0;
  applied_ = 0;
  durable_ = 0;
}

void SendQueue::SyncDone() {
  absl::MutexLock lock(&mu_);
  // Another sync only after something changed (a batch written, a rewind, a Push() waiting).
  sync_due_ = false;
}

void SendQueue::FlushDone(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (!status.ok()) SetError(status);
  flush_done_ = flush_serving_;
}

int64_t SendQueue::applied_sequence() const {
  absl::MutexLock lock(&mu_);
  return applied_;
}

int64_t SendQueue::durable_sequence() const {
  absl::MutexLock lock(&mu_);
  return durable_;
}

int64_t SendQueue::unconfirmed_batches() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(next_);
}

bool SendQueue::legacy() const {
  absl::MutexLock lock(&mu_);
  return legacy_;
}

int64_t SendQueue::held_batches() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(held_.size());
}

void SendQueue::CountApplied() {
  // The server's counts for a batch (RecordResponse): a tensor is one batch of prod(shape)
  // elements and its data bytes; a partial state the batches and elements it stands for and its
  // serialized size.
  for (Held& held : held_) {
    if (held.batch.sequence > applied_) break;
    if (held.counted) continue;
    held.counted = true;
    const Batch& batch = held.batch;
    if (batch.partial.has_value()) {
      totals_.applied_batches += batch.partial->batches();
      totals_.applied_elements += batch.partial->elements();
      totals_.applied_bytes += static_cast<int64_t>(batch.partial->ByteSizeLong());
      ++totals_.applied_partials;
    } else {
      int64_t elements = 1;
      for (const int64_t dim : batch.shape) elements *= dim;
      ++totals_.applied_batches;
      totals_.applied_elements += elements;
      totals_.applied_bytes += static_cast<int64_t>(batch.data.size());
    }
  }
}

void SendQueue::FreeDurable() {
  while (!held_.empty() && held_.front().batch.sequence <= durable_) {
    held_bytes_ -= held_.front().batch.bytes();
    held_.pop_front();
    if (next_ > 0) --next_;
  }
}

void SendQueue::SetError(const absl::Status& status) {
  if (error_.ok()) error_ = status;
}

absl::Status SendQueue::TakeError() { return std::exchange(error_, absl::OkStatus()); }

}  // namespace qcal::internal
