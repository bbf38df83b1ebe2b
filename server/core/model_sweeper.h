// Deletes the models no call has used for longer than a time to live (--model-ttl), from a
// background thread, logging each with its idle time. A use is any call that looks the model up
// (ModelRegistry::Find); listing models is not one.
//
//   ModelSweeper sweeper(registry, absl::Hours(24), [&](const std::string& name) { ... });
//   // ... until destroyed, which stops the thread.
#ifndef QCAL_SERVER_CORE_MODEL_SWEEPER_H_
#define QCAL_SERVER_CORE_MODEL_SWEEPER_H_

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/model_registry.h"

namespace qcal::server {

class ModelSweeper {
 public:
  // `ttl` >= 1 s (at one-second resolution: a model is deleted once more than `ttl` whole
  // seconds lie between its last use and now). `deleted` is called for each model deleted, from
  // the sweeping thread, with the registry's DeletedHook's status. `registry` must outlive the
  // sweeper.
  ModelSweeper(ModelRegistry& registry, absl::Duration ttl,
               std::function<void(const std::string&, const absl::Status&)> deleted);
  // Stops the thread (a sweep in progress finishes first).
  ~ModelSweeper();
  ModelSweeper(const ModelSweeper&) = delete;
  ModelSweeper& operator=(const ModelSweeper&) = delete;

  // One sweep as of `now`: the names deleted. The thread calls it every period().
  std::vector<std::string> SweepOnce(absl::Time now);
  // A quarter of the ttl, between 100 ms and 1 min: a model lives at most that much past it.
  absl::Duration period() const { return period_; }

 private:
  void Run();

  ModelRegistry& registry_;
  const int64_t ttl_seconds_;
  const absl::Duration period_;
  const std::function<void(const std::string&, const absl::Status&)> deleted_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_MODEL_SWEEPER_H_
