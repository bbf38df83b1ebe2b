#include "server/core/model_sweeper.h"

#include <algorithm>
#include <utility>

#include "spdlog/spdlog.h"

namespace qcal::server {

ModelSweeper::ModelSweeper(ModelRegistry& registry, absl::Duration ttl,
                           std::function<void(const std::string&, const absl::Status&)> deleted)
    : registry_(registry),
      ttl_seconds_(std::max<int64_t>(absl::ToInt64Seconds(ttl), 1)),
      period_(std::clamp(ttl / 4, absl::Milliseconds(100), absl::Minutes(1))),
      deleted_(std::move(deleted)),
      thread_([this] { Run(); }) {}

ModelSweeper::~ModelSweeper() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

std::vector<std::string> ModelSweeper::SweepOnce(absl::Time now) {
  const int64_t now_seconds = absl::ToUnixSeconds(now);
  // More than ttl whole seconds idle: a use within the ttl never qualifies, however the
  // seconds are truncated.
  const int64_t cutoff = now_seconds - ttl_seconds_ - 1;
  std::vector<std::string> out;
  for (const std::shared_ptr<Model>& model : registry_.List()) {
    if (model->last_used_unix_seconds() > cutoff) continue;
    // Checked again under the registry's lock: a call may have used it since List.
    absl::Status hook;
    std::shared_ptr<Model> deleted = registry_.DeleteIfUnusedSince(model->name(), cutoff, &hook);
    if (deleted == nullptr) continue;
    spdlog::info("model '{}' deleted: no call used it for {} s (--model-ttl {})", deleted->name(),
                 now_seconds - deleted->last_used_unix_seconds(), ttl_seconds_);
    if (deleted_) deleted_(deleted->name(), hook);
    out.push_back(deleted->name());
  }
  return out;
}

void ModelSweeper::Run() {
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), period_)) {
    mu_.Unlock();
    SweepOnce(absl::Now());
    mu_.Lock();
  }
}

}  // namespace qcal::server
