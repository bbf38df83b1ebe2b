#include "server/core/committer.h"

#include <set>

#include "spdlog/spdlog.h"

namespace qcal::server {

Committer::Committer(CalibrationCore& core, DiskDurability& durability, absl::Duration interval)
    : core_(core), durability_(durability), interval_(interval), thread_([this] { Run(); }) {}

Committer::~Committer() { Stop(); }

void Committer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Committer::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time until = absl::Now() + interval_;
      mu_.AwaitWithDeadline(absl::Condition(&stop_), until);
      if (stop_) return;
    }
    const DiskDurability::CommitSummary summary = durability_.CommitAll(core_.Models());
    for (const std::string& name : summary.written) {
      spdlog::debug("--data-dir: committed model '{}'", name);
    }
    Report(summary);
  }
}

void Committer::Report(const DiskDurability::CommitSummary& summary) {
  // Keyed by the message, which names the model and the reason: a changed reason is logged anew,
  // a repeated one is not (the committer would otherwise log it every interval).
  std::set<std::string> now;
  for (const absl::Status& failure : summary.failed) {
    const std::string message(failure.message());
    if (!failing_.contains(message)) spdlog::error("--data-dir: commit failed: {}", message);
    now.insert(message);
  }
  if (!failing_.empty() && now.empty()) spdlog::info("--data-dir: commits succeed again");
  failing_ = std::move(now);
}

}  // namespace qcal::server
