// Durability through a --data-dir (storage/data_dir.h): Commit writes a model's snapshot to its
// file when the model changed since the file was written (Model::version), Forget removes the
// file; Restore loads every file into the core at start; CommitAll is what the periodic
// committer and the shutdown run. Thread-safe; commits run one at a time.
//
//   QCAL_ASSIGN_OR_RETURN(auto dir, DataDir::Open({.path = "/var/lib/qcal"}));
//   DiskDurability durability(std::move(dir));
//   CalibrationCore core({.durability = &durability}, metrics);
//   durability.Restore(core);                      // before the server takes calls
//   QCAL_RETURN_IF_ERROR(durability.Commit(*model));
#ifndef QCAL_SERVER_CORE_DISK_DURABILITY_H_
#define QCAL_SERVER_CORE_DISK_DURABILITY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/calibration_core.h"
#include "server/core/durability.h"
#include "server/core/model.h"
#include "server/storage/data_dir.h"

namespace qcal::server {

class DiskDurability final : public Durability {
 public:
  explicit DiskDurability(std::unique_ptr<DataDir> dir) : dir_(std::move(dir)) {}
  DiskDurability(const DiskDurability&) = delete;
  DiskDurability& operator=(const DiskDurability&) = delete;

  // CommitChanged without the answer.
  absl::Status Commit(Model& model) override;
  // DataDir::Remove's errors.
  absl::Status Forget(const std::string& model_name) override;
  // DataDir::CheckFree.
  absl::Status CheckNewModel(const std::string& model_name) override;

  // Writes `model` (snapshot under its lock, file written outside it) unless it is unchanged
  // since its last write or retired (deleted: writing it would bring it back at the next start);
  // true when it wrote. DataDir::Write's errors (UNAVAILABLE), Model::Snapshot's.
  absl::StatusOr<bool> CommitChanged(Model& model) ABSL_LOCKS_EXCLUDED(mu_);

  struct CommitSummary {
    // Models written, in the order given.
    std::vector<std::string> written{};
    // One error per model that could not be written (the others are still written).
    std::vector<absl::Status> failed{};
  };
  CommitSummary CommitAll(const std::vector<std::shared_ptr<Model>>& models);

  struct RestoreSummary {
    int restored = 0;
    int refused = 0;
  };
  // Loads every model file of the data dir into `core` (CalibrationCore::RestoreModel), each
  // counted as written. A file that does not load, or whose model the core refuses (its limits,
  // its checks of the ONNX model and states), is logged as "refusing FILE: REASON; the file
  // stays" and left in place (and its name refused to new models while it is there,
  // DataDir::CheckFree); the others load.
  RestoreSummary Restore(CalibrationCore& core) ABSL_LOCKS_EXCLUDED(mu_);

  DataDir& dir() { return *dir_; }

 private:
  const std::unique_ptr<DataDir> dir_;

  absl::Mutex mu_;
  // Model name -> the Model::version its file holds.
  std::map<std::string, uint64_t> written_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_DISK_DURABILITY_H_
