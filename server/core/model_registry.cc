#include "server/core/model_registry.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/base/names.h"
#include "server/base/status_util.h"

namespace qcal::server {
namespace {

// INVALID_ARGUMENT for a name no model can have (names.h), NOT_FOUND otherwise.
absl::Status UnknownModel(absl::string_view name) {
  QCAL_RETURN_IF_ERROR(CheckName("model name", name));
  return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
}

}  // namespace

absl::StatusOr<std::shared_ptr<Model>> ModelRegistry::Create(ModelConfig config, bool exist_ok) {
  if (exist_ok) {
    std::shared_ptr<Model> existing;
    {
      absl::ReaderMutexLock lock(&mu_);
      if (const auto it = models_.find(config.name); it != models_.end()) existing = it->second;
    }
    if (existing != nullptr) {
      // Joining creates nothing: the model built to compare configurations is charged to no
      // budget, so a full --max-state-bytes does not refuse a join.
      ModelConfig probe = config;
      probe.limits.state_budget = nullptr;
      QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> wanted, Model::Create(std::move(probe)));
      if (std::optional<std::string> difference = existing->ConfigDifference(*wanted)) {
        return absl::FailedPreconditionError(*difference);
      }
      return existing;
    }
  }
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, Model::Create(std::move(config)));
  absl::MutexLock names(&names_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (const auto it = models_.find(model->name()); it != models_.end()) {
      if (!exist_ok) {
        return absl::AlreadyExistsError(absl::StrCat("model '", model->name(), "' already exists"));
      }
      if (std::optional<std::string> difference = it->second->ConfigDifference(*model)) {
        return absl::FailedPreconditionError(*difference);
      }
      return it->second;
    }
  }
  QCAL_RETURN_IF_ERROR(InsertNewLocked(model, Origin::kNew));
  return model;
}

absl::Status ModelRegistry::Insert(std::shared_ptr<Model> model, Origin origin) {
  absl::MutexLock names(&names_mu_);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (models_.contains(model->name())) {
      return absl::AlreadyExistsError(absl::StrCat("model '", model->name(), "' already exists"));
    }
  }
  return InsertNewLocked(std::move(model), origin);
}

absl::Status ModelRegistry::InsertNewLocked(std::shared_ptr<Model> model, Origin origin) {
  {
    absl::ReaderMutexLock lock(&mu_);
    QCAL_RETURN_IF_ERROR(CheckRoomLocked(model->name()));
  }
  // Outside mu_, which lookups take: the hook may write to the data dir. names_mu_ keeps the
  // name free and the count unchanged meanwhile.
  if (new_model_ && origin == Origin::kNew) QCAL_RETURN_IF_ERROR(new_model_(*model));
  absl::MutexLock lock(&mu_);
  models_.emplace(model->name(), std::move(model));
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Model>> ModelRegistry::Find(absl::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  const auto it = models_.find(name);
  if (it == models_.end()) return UnknownModel(name);
  // Under the lock, so DeleteIfUnusedSince sees the mark.
  it->second->Touch();
  return it->second;
}

absl::StatusOr<std::shared_ptr<Model>> ModelRegistry::Peek(absl::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  const auto it = models_.find(name);
  if (it == models_.end()) return UnknownModel(name);
  return it->second;
}

std::vector<std::shared_ptr<Model>> ModelRegistry::List() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::shared_ptr<Model>> out;
  out.reserve(models_.size());
  for (const auto& [name, model] : models_) out.push_back(model);
  return out;
}

absl::Status ModelRegistry::Delete(absl::string_view name) {
  absl::MutexLock names(&names_mu_);
  std::string deleted;
  {
    absl::MutexLock lock(&mu_);
    const auto it = models_.find(name);
    if (it == models_.end()) return UnknownModel(name);
    it->second->Retire();
    deleted = it->first;
    models_.erase(it);
  }
  return deleted_ ? deleted_(deleted) : absl::OkStatus();
}

std::shared_ptr<Model> ModelRegistry::DeleteIfUnusedSince(absl::string_view name, int64_t cutoff,
                                                          absl::Status* hook_status) {
  absl::MutexLock names(&names_mu_);
  std::shared_ptr<Model> deleted;
  {
    absl::MutexLock lock(&mu_);
    const auto it = models_.find(name);
    if (it == models_.end() || it->second->last_used_unix_seconds() > cutoff) return nullptr;
    deleted = std::move(it->second);
    // As Delete: a retired model is never written to the data dir again.
    deleted->Retire();
    models_.erase(it);
  }
  if (deleted_) {
    absl::Status status = deleted_(deleted->name());
    if (hook_status != nullptr) *hook_status = std::move(status);
  }
  return deleted;
}

int64_t ModelRegistry::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int64_t>(models_.size());
}

absl::Status ModelRegistry::CheckRoomLocked(absl::string_view name) const {
  if (static_cast<int64_t>(models_.size()) < max_models_) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "model '", name, "': the server holds ", models_.size(), " models, its --max-models ",
      max_models_, "; delete models you are done with (DeleteModel) or raise --max-models"));
  return absl::OkStatus();
}

}  // namespace qcal::server
