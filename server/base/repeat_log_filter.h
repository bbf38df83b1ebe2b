// Keeps a warning that repeats from flooding the log: the same text (a model whose Commit keeps
// failing on a full disk, retried by its clients) is let through at most once per `interval`;
// the repeats held back in between are counted and said with the next one let through.
#ifndef QCAL_SERVER_BASE_REPEAT_LOG_FILTER_H_
#define QCAL_SERVER_BASE_REPEAT_LOG_FILTER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace qcal::server {

class RepeatLogFilter {
 public:
  explicit RepeatLogFilter(absl::Duration interval) : interval_(interval) {}

  // Whether to log `message` at `now`: nullopt to hold it back (the same text was let through
  // less than `interval` ago), else the number of its repeats held back since it last was.
  // Thread-safe.
  std::optional<int64_t> Pass(absl::string_view message, absl::Time now);

 private:
  struct Seen {
    absl::Time logged;
    int64_t held_back = 0;
  };
  // Texts are forgotten once `interval` has passed since they were logged, when the map holds
  // this many: a bound on the memory, whatever the texts.
  static constexpr size_t kMaxTexts = 1024;

  const absl::Duration interval_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Seen> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_BASE_REPEAT_LOG_FILTER_H_
