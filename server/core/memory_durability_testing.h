// Tests only: a Durability (durability.h) that keeps each committed snapshot in memory, as a
// serialized StateFile: the seam as --data-dir uses it, with the disk write replaced by a copy,
// so that a session's durable sequence lags its applied one until a Commit.
#ifndef QCAL_SERVER_CORE_MEMORY_DURABILITY_TESTING_H_
#define QCAL_SERVER_CORE_MEMORY_DURABILITY_TESTING_H_

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/durability.h"
#include "server/core/model.h"
#include "server/storage/state_file.h"

namespace qcal::server {

class MemoryDurability final : public Durability {
 public:
  absl::Status Commit(Model& model) override {
    absl::StatusOr<ModelSnapshot> snapshot = model.Snapshot();
    if (!snapshot.ok()) return snapshot.status();
    {
      absl::MutexLock lock(&mu);
      written[model.name()] = EncodeStateFile(*snapshot);
    }
    model.MarkDurable(snapshot->sessions);
    ++commits;
    return absl::OkStatus();
  }
  absl::Status Forget(const std::string& model_name) override {
    absl::MutexLock lock(&mu);
    written.erase(model_name);
    forgotten.push_back(model_name);
    return absl::OkStatus();
  }
  absl::Status CheckNewModel(const std::string&) override { return absl::OkStatus(); }

  // Serializes the writers; a test reads the fields once the calls it made are done.
  absl::Mutex mu;
  // Model name -> its last committed StateFile.
  std::map<std::string, std::string> written;
  std::vector<std::string> forgotten;
  std::atomic<int> commits = 0;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_MEMORY_DURABILITY_TESTING_H_
