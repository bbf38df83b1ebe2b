#include "server/core/disk_durability.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/base/status_util.h"
#include "spdlog/spdlog.h"

namespace qcal::server {

absl::Status DiskDurability::Commit(Model& model) { return CommitChanged(model).status(); }

absl::StatusOr<bool> DiskDurability::CommitChanged(Model& model) {
  absl::MutexLock lock(&mu_);
  // Checked under mu_, which Forget takes too: a model deleted after this check has its file
  // removed by the Forget that follows its deletion, after this write.
  if (model.retired()) return false;
  const auto it = written_.find(model.name());
  if (it != written_.end() && it->second == model.version()) return false;
  uint64_t version = 0;
  QCAL_ASSIGN_OR_RETURN(ModelSnapshot snapshot, model.Snapshot(&version));
  QCAL_RETURN_IF_ERROR(dir_->Write(snapshot));
  written_[model.name()] = version;
  model.MarkDurable(std::move(snapshot.sessions));
  return true;
}

absl::Status DiskDurability::Forget(const std::string& model_name) {
  absl::MutexLock lock(&mu_);
  written_.erase(model_name);
  return dir_->Remove(model_name);
}

absl::Status DiskDurability::CheckNewModel(const std::string& model_name) {
  return dir_->CheckFree(model_name);
}

DiskDurability::CommitSummary DiskDurability::CommitAll(
    const std::vector<std::shared_ptr<Model>>& models) {
  CommitSummary out;
  for (const std::shared_ptr<Model>& model : models) {
    absl::StatusOr<bool> wrote = CommitChanged(*model);
    if (!wrote.ok()) {
      out.failed.push_back(wrote.status());
    } else if (*wrote) {
      out.written.push_back(model->name());
    }
  }
  return out;
}

DiskDurability::RestoreSummary DiskDurability::Restore(CalibrationCore& core) {
  RestoreSummary out;
  for (StoredModel& stored : dir_->LoadAll()) {
    absl::StatusOr<std::shared_ptr<Model>> model =
        stored.snapshot.ok() ? core.RestoreModel(*stored.snapshot)
                             : absl::StatusOr<std::shared_ptr<Model>>(stored.snapshot.status());
    if (!model.ok()) {
      spdlog::error("--data-dir: refusing {}: {}; the file stays", stored.path,
                    std::string(model.status().message()));
      dir_->Refuse(stored.path, model.status().message());
      ++out.refused;
      continue;
    }
    absl::MutexLock lock(&mu_);
    written_[(*model)->name()] = (*model)->version();
    ++out.restored;
  }
  return out;
}

}  // namespace qcal::server
