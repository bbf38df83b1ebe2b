#include "server/base/repeat_log_filter.h"

#include <string>

namespace qcal::server {

std::optional<int64_t> RepeatLogFilter::Pass(absl::string_view message, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (auto it = seen_.find(message); it != seen_.end()) {
    Seen& seen = it->second;
    if (now - seen.logged < interval_) {
      ++seen.held_back;
      return std::nullopt;
    }
    const int64_t held_back = seen.held_back;
    seen = {.logged = now, .held_back = 0};
    return held_back;
  }
  if (seen_.size() >= kMaxTexts) {
    // Held-back counts of texts not seen for an interval are dropped with them (rare: 1024
    // different failing texts at once).
    absl::erase_if(seen_,
                   [&](const auto& entry) { return now - entry.second.logged >= interval_; });
    // Still full of recent texts: this one is logged, not remembered.
    if (seen_.size() >= kMaxTexts) return 0;
  }
  seen_.emplace(std::string(message), Seen{.logged = now});
  return 0;
}

}  // namespace qcal::server
