#include "client/send_queue.h"

#include <utility>

namespace qcal::internal {

SendQueue::SendQueue(size_t capacity_bytes) : capacity_bytes_(capacity_bytes) {}

absl::Status SendQueue::Push(Batch batch) {
  const size_t bytes = batch.bytes();
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return TakeError();
  auto has_room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || queue_.empty() || queued_bytes_ + bytes <= capacity_bytes_;
  };
  if (!has_room()) {
    ++blocked_pushes_;
    mu_.Await(absl::Condition(&has_room));
    --blocked_pushes_;
  }
  if (!error_.ok()) return TakeError();
  queued_bytes_ += bytes;
  queue_.push_back(std::move(batch));
  return absl::OkStatus();
}

absl::Status SendQueue::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = ++flush_requested_;
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return flush_done_ >= ticket; };
  mu_.Await(absl::Condition(&done));
  return TakeError();
}

void SendQueue::Close() {
  absl::MutexLock lock(&mu_);
  closing_ = true;
}

SessionStats SendQueue::Stats() const {
  absl::MutexLock lock(&mu_);
  SessionStats stats = totals_;
  stats.queued_batches = queue_.size();
  stats.queued_bytes = queued_bytes_;
  stats.blocked_records = blocked_pushes_;
  return stats;
}

SendQueue::Work SendQueue::Next() {
  absl::MutexLock lock(&mu_);
  auto has_work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || flush_requested_ > flush_done_ || closing_;
  };
  mu_.Await(absl::Condition(&has_work));
  if (!queue_.empty()) return {Work::kBatch, &queue_.front()};
  if (flush_requested_ > flush_done_) {
    flush_serving_ = flush_requested_;
    return {Work::kFlush};
  }
  return {Work::kClose};
}

void SendQueue::BatchDone(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  queued_bytes_ -= queue_.front().bytes();
  queue_.pop_front();
  if (status.ok()) return;
  SetError(status);
  totals_.dropped_batches += static_cast<int64_t>(queue_.size());
  queue_.clear();
  queued_bytes_ = 0;
}

void SendQueue::StreamClosed(const v1::RecordResponse& applied, int64_t unapplied) {
  absl::MutexLock lock(&mu_);
  totals_.applied_batches += applied.batches();
  totals_.applied_elements += applied.elements();
  totals_.applied_nonfinite += applied.nonfinite();
  totals_.applied_bytes += applied.bytes();
  totals_.applied_partials += applied.partials();
  totals_.dropped_batches += unapplied;
}

void SendQueue::FlushDone(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (!status.ok()) SetError(status);
  flush_done_ = flush_serving_;
}

void SendQueue::SetError(const absl::Status& status) {
  if (error_.ok()) error_ = status;
}

absl::Status SendQueue::TakeError() { return std::exchange(error_, absl::OkStatus()); }

}  // namespace qcal::internal
