// Group commit: a thread that writes every changed model to the data dir each interval
// (--commit-interval-seconds), so what a crash can lose is bounded by the interval without a
// disk write per batch. A failure is logged once, until its reason changes or it clears.
//
//   Committer committer(core, durability, absl::Seconds(5));
//   ...
//   committer.Stop();   // before the final commit of the shutdown
#ifndef QCAL_SERVER_CORE_COMMITTER_H_
#define QCAL_SERVER_CORE_COMMITTER_H_

#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/calibration_core.h"
#include "server/core/disk_durability.h"

namespace qcal::server {

class Committer {
 public:
  // Starts the thread; `core` and `durability` must outlive the Committer.
  Committer(CalibrationCore& core, DiskDurability& durability, absl::Duration interval);
  // Stops.
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Returns once the thread has stopped (after the commit it is running, if any). Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Logs the new failures of `summary` and the models written again after a failure.
  void Report(const DiskDurability::CommitSummary& summary);

  CalibrationCore& core_;
  DiskDurability& durability_;
  const absl::Duration interval_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // The committer thread's own: the failures logged and not cleared since.
  std::set<std::string> failing_{};
  std::thread thread_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_COMMITTER_H_
