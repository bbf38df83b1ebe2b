// The models a server holds, by name. Thread-safe. Callers keep the shared_ptr a lookup returns
// only for one operation (Record looks the model up again for each batch), so a deleted model
// stops taking data at once.
//
//   ModelRegistry registry;
//   QCAL_ASSIGN_OR_RETURN(auto model, registry.Create({.name = "net"}));
//   QCAL_ASSIGN_OR_RETURN(auto same, registry.Find("net"));
#ifndef QCAL_SERVER_CORE_MODEL_REGISTRY_H_
#define QCAL_SERVER_CORE_MODEL_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/model.h"

namespace qcal::server {

class ModelRegistry {
 public:
  // Holds at most `max_models` models (--max-models).
  // Called by Delete and DeleteIfUnusedSince once the model has left, before any model of any
  // name can be created or inserted (those wait): the removal of its --data-dir file must not be
  // able to remove the file of a new model of the same name created meanwhile. Its error is
  // Delete's (the model is deleted all the same).
  using DeletedHook = std::function<absl::Status(const std::string& name)>;
  // Called by Create and Insert with a new model (its name free, --max-models checked) before
  // it is inserted, with no creation or deletion in between and before any call can reach it:
  // its error refuses the model, which is then never seen. The data dir refuses there a name
  // whose file it refused at start, and writes the new model's file, so that a model is durable
  // before its creator hears of it (a crash right after CreateModel must not lose it: the
  // clients' resent batches would find no model).
  using NewModelHook = std::function<absl::Status(Model& model)>;

  // Holds at most `max_models` models (--max-models).
  explicit ModelRegistry(int64_t max_models = std::numeric_limits<int64_t>::max(),
                         DeletedHook deleted = nullptr, NewModelHook new_model = nullptr)
      : max_models_(max_models), deleted_(std::move(deleted)), new_model_(std::move(new_model)) {}
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // ALREADY_EXISTS for a name in use; the errors of Model::Create (checked first, also when the
  // name is in use); RESOURCE_EXHAUSTED naming --max-models when a new name would pass it; the
  // NewModelHook's error for a new model. With
  // `exist_ok`, a name in use returns that model when its configuration equals `config`'s
  // (Model::ConfigDifference), FAILED_PRECONDITION naming the first difference otherwise; the check
  // and the creation are one step, so two creators cannot race.
  absl::StatusOr<std::shared_ptr<Model>> Create(ModelConfig config, bool exist_ok = false);
  // Adds a model built elsewhere (Model::FromSnapshot). ALREADY_EXISTS for a name in use;
  // RESOURCE_EXHAUSTED naming --max-models when the registry is full; the NewModelHook's error.
  // kRestored (a model read from the data dir at start) skips the NewModelHook: it is on disk.
  enum class Origin { kNew, kRestored };
  absl::Status Insert(std::shared_ptr<Model> model, Origin origin = Origin::kNew);
  // A call's lookup: marks the model used (Model::Touch, which --model-ttl counts from).
  // NOT_FOUND for an unknown name; INVALID_ARGUMENT for one that is not a name (names.h).
  absl::StatusOr<std::shared_ptr<Model>> Find(absl::string_view name) const;
  // As Find, without marking the model used: for watchers (the dashboard), whose reads must not
  // keep a model from its --model-ttl.
  absl::StatusOr<std::shared_ptr<Model>> Peek(absl::string_view name) const;
  // In name order. Marks nothing used.
  std::vector<std::shared_ptr<Model>> List() const;
  // As Find, and the DeletedHook's error. The model is retired (Model::retired) as it leaves.
  absl::Status Delete(absl::string_view name);
  // Deletes `name` if no call used it after `cutoff` (Model::last_used_unix_seconds <= cutoff,
  // Unix seconds), in one step with Find's marking, so a model a call just found stays. Returns
  // the model deleted (retired, as Delete's), or null when it is gone or was used since; the
  // DeletedHook's error in `*hook_status` when given.
  std::shared_ptr<Model> DeleteIfUnusedSince(absl::string_view name, int64_t cutoff,
                                             absl::Status* hook_status = nullptr);
  int64_t size() const;

 private:
  // RESOURCE_EXHAUSTED naming --max-models when one more model would pass it.
  absl::Status CheckRoomLocked(absl::string_view name) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Inserts `model`, whose name is free: the room check, then the NewModelHook (for kNew).
  absl::Status InsertNewLocked(std::shared_ptr<Model> model, Origin origin)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(names_mu_) ABSL_LOCKS_EXCLUDED(mu_);

  const int64_t max_models_;
  const DeletedHook deleted_;
  const NewModelHook new_model_;
  // Held by whatever gives a name a model or takes it away, the DeletedHook included; never by
  // lookups, which take only mu_. Taken before mu_.
  absl::Mutex names_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Model>, std::less<>> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_MODEL_REGISTRY_H_
