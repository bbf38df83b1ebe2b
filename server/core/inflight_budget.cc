#include "server/core/inflight_budget.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace qcal::server {

InflightBudget::Reservation::Reservation(Reservation&& other) noexcept
    : budget_(std::exchange(other.budget_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

InflightBudget::Reservation& InflightBudget::Reservation::operator=(Reservation&& other) noexcept {
  if (this != &other) {
    Release();
    budget_ = std::exchange(other.budget_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void InflightBudget::Reservation::Release() {
  if (budget_ == nullptr) return;
  std::exchange(budget_, nullptr)->Release(std::exchange(bytes_, 0));
}

InflightBudget::InflightBudget(int64_t limit_bytes, absl::Duration max_wait, Metrics* metrics)
    : limit_bytes_(limit_bytes), max_wait_(max_wait), metrics_(metrics) {
  absl::MutexLock lock(&mu_);
  ReportLocked();
}

bool InflightBudget::FitsLocked(int64_t bytes) const {
  return reserved_ == 0 || bytes <= limit_bytes_ - reserved_;
}

void InflightBudget::ReportLocked() {
  if (metrics_ != nullptr) metrics_->SetInflight(reserved_, static_cast<int>(queue_.size()));
}

absl::StatusOr<InflightBudget::Reservation> InflightBudget::Reserve(int64_t bytes,
                                                                    const CallControl& call,
                                                                    absl::string_view what) {
  absl::MutexLock lock(&mu_);
  if (queue_.empty() && FitsLocked(bytes)) {
    reserved_ += bytes;
    ReportLocked();
    return Reservation(this, bytes);
  }

  // Wait, in turn. The wait ends early enough that the refusal, not the deadline, reaches the
  // caller.
  const absl::Time start = absl::Now();
  const absl::Time deadline = call.Deadline();
  const bool has_deadline = deadline != absl::InfiniteFuture();
  const absl::Time give_up =
      has_deadline ? deadline - std::min(absl::Seconds(1),
                                         std::max(deadline - start, absl::ZeroDuration()) / 10)
                   : start + max_wait_;
  const uint64_t ticket = next_ticket_++;
  queue_.push_back(ticket);
  ++waits_total_;
  if (metrics_ != nullptr) metrics_->InflightWaitStarted();
  ReportLocked();

  const auto granted = [this, ticket, bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.front() == ticket && FitsLocked(bytes);
  };
  absl::Status refused;
  for (;;) {
    if (call.Cancelled()) {
      refused = absl::CancelledError(absl::StrCat(
          what, ": the call was cancelled while its batch waited for --max-inflight-bytes"));
      break;
    }
    const absl::Time now = absl::Now();
    if (now >= give_up) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          what, ": a batch needing ", bytes, " bytes waited ",
          absl::FormatDuration(absl::Trunc(now - start, absl::Milliseconds(1))),
          " for room under --max-inflight-bytes (", limit_bytes_, " bytes, ", reserved_,
          " reserved by other Record streams) until ",
          has_deadline
              ? "the call's deadline"
              : absl::StrCat("--max-inflight-wait-seconds (", absl::FormatDuration(max_wait_), ")"),
          "; retry later, send smaller batches, or raise --max-inflight-bytes"));
      break;
    }
    if (mu_.AwaitWithDeadline(absl::Condition(&granted), std::min(give_up, now + kCancelPoll))) {
      queue_.pop_front();
      reserved_ += bytes;
      ReportLocked();
      return Reservation(this, bytes);
    }
  }
  queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
  ReportLocked();
  return refused;
}

void InflightBudget::Release(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  reserved_ -= bytes;
  ReportLocked();
}

int64_t InflightBudget::reserved_bytes() const {
  absl::MutexLock lock(&mu_);
  return reserved_;
}

int InflightBudget::waiting() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size());
}

int64_t InflightBudget::waits_total() const {
  absl::MutexLock lock(&mu_);
  return waits_total_;
}

}  // namespace qcal::server
