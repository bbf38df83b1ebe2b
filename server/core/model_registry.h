// The models a server holds, by name. Thread-safe. Callers keep the shared_ptr a lookup returns
// only for one operation (Record looks the model up again for each batch), so a deleted model
// stops taking data at once.
//
//   ModelRegistry registry;
//   QCAL_ASSIGN_OR_RETURN(auto model, registry.Create({.name = "net"}));
//   QCAL_ASSIGN_OR_RETURN(auto same, registry.Find("net"));
#ifndef QCAL_SERVER_CORE_MODEL_REGISTRY_H_
#define QCAL_SERVER_CORE_MODEL_REGISTRY_H_

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
  ModelRegistry() = default;
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // ALREADY_EXISTS for a name in use; the errors of Model::Create (checked first, also when the
  // name is in use). With `exist_ok`, a name in use returns that model when its configuration
  // equals `config`'s (Model::ConfigDifference), FAILED_PRECONDITION naming the first difference
  // otherwise; the check and the creation are one step, so two creators cannot race.
  absl::StatusOr<std::shared_ptr<Model>> Create(ModelConfig config, bool exist_ok = false);
  // Adds a model built elsewhere (Model::FromSnapshot). ALREADY_EXISTS for a name in use.
  absl::Status Insert(std::shared_ptr<Model> model);
  // NOT_FOUND for an unknown name; INVALID_ARGUMENT for one that is not a name (names.h).
  absl::StatusOr<std::shared_ptr<Model>> Find(absl::string_view name) const;
  // In name order.
  std::vector<std::shared_ptr<Model>> List() const;
  // As Find. The model is retired (Model::retired) as it leaves.
  absl::Status Delete(absl::string_view name);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Model>, std::less<>> models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_MODEL_REGISTRY_H_
