#include "server/core/stream_watchdog.h"

#include <algorithm>
#include <utility>

#include "spdlog/spdlog.h"

namespace qcal::server {

StreamWatchdog::Watch::~Watch() {
  if (watchdog_ == nullptr) return;
  absl::MutexLock lock(&watchdog_->mu_);
  watchdog_->entries_.erase(id_);
}

StreamWatchdog::Watch::Watch(Watch&& other) noexcept
    : watchdog_(std::exchange(other.watchdog_, nullptr)), id_(other.id_) {}

void StreamWatchdog::Watch::Reading() {
  if (watchdog_ == nullptr) return;
  absl::MutexLock lock(&watchdog_->mu_);
  watchdog_->entries_[id_].reading_since = absl::Now();
}

void StreamWatchdog::Watch::Busy() {
  if (watchdog_ == nullptr) return;
  absl::MutexLock lock(&watchdog_->mu_);
  watchdog_->entries_[id_].reading_since = absl::InfiniteFuture();
}

void StreamWatchdog::Watch::Describe(std::string what) {
  if (watchdog_ == nullptr) return;
  absl::MutexLock lock(&watchdog_->mu_);
  watchdog_->entries_[id_].what = std::move(what);
}

StreamWatchdog::StreamWatchdog(absl::Duration idle, Metrics* metrics)
    : idle_(idle), metrics_(metrics) {
  if (idle_ > absl::ZeroDuration()) thread_ = std::thread([this] { Run(); });
}

StreamWatchdog::~StreamWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

StreamWatchdog::Watch StreamWatchdog::Add(std::string what, std::function<void()> end) {
  if (idle_ <= absl::ZeroDuration()) return Watch();
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  entries_.emplace(id, Entry{.what = std::move(what), .end = std::move(end)});
  return Watch(this, id);
}

int64_t StreamWatchdog::ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

void StreamWatchdog::Check(absl::Time now) {
  absl::MutexLock lock(&mu_);
  for (auto& [id, entry] : entries_) {
    if (entry.ended || now - entry.reading_since < idle_) continue;
    entry.ended = true;
    ++ended_;
    if (metrics_ != nullptr) metrics_->StreamIdleEnded();
    spdlog::info("{}: nothing received for {}: ended by the server (--stream-idle-seconds {})",
                 entry.what, absl::FormatDuration(now - entry.reading_since),
                 absl::ToInt64Seconds(idle_));
    // Under the lock: the stream's Watch, and what `end` uses, cannot go away meanwhile.
    entry.end();
  }
}

void StreamWatchdog::Run() {
  const absl::Duration period = std::clamp(idle_ / 10, absl::Milliseconds(10), absl::Seconds(1));
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), period)) {
    mu_.Unlock();
    Check(absl::Now());
    mu_.Lock();
  }
}

}  // namespace qcal::server
