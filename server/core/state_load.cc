#include "server/core/state_load.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/base/names.h"
#include "server/base/status_util.h"
#include "server/storage/state_file.h"

namespace qcal::server {

StateLoad::StateLoad(ModelRegistry& registry, ModelConfig base, int64_t max_bytes)
    : registry_(registry),
      base_(std::move(base)),
      max_bytes_(max_bytes),
      received_(base_.limits.state_budget) {}

absl::Status StateLoad::Add(StateLoadChunk chunk) {
  if (model_.empty()) {
    if (chunk.model.empty()) {
      return absl::InvalidArgumentError("the first LoadState message needs `model`");
    }
    QCAL_RETURN_IF_ERROR(CheckName("LoadState: model name", chunk.model));
    model_ = std::move(chunk.model);
    merge_ = chunk.merge;
  } else if (!chunk.model.empty() && chunk.model != model_) {
    return absl::InvalidArgumentError(absl::StrCat("a LoadState stream of model '", model_,
                                                   "' got a message for model '",
                                                   ShortForMessage(chunk.model), "'"));
  } else if (chunk.merge && !merge_) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model_, "', LoadState: `merge` belongs in the first message"));
  }
  if (static_cast<int64_t>(chunk.data.size()) > max_bytes_ - static_cast<int64_t>(bytes_.size())) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model '", model_, "', LoadState: the state file is larger than the server's limit of ",
        max_bytes_, " bytes (--max-batch-bytes)"));
  }
  QCAL_RETURN_IF_ERROR(received_.Resize(
      static_cast<int64_t>(bytes_.size() + chunk.data.size()),
      absl::StrCat("model '", model_, "', LoadState: the state file received so far")));
  if (bytes_.empty()) {
    bytes_ = std::move(chunk.data);
  } else {
    bytes_.append(chunk.data);
  }
  return absl::OkStatus();
}

absl::Status StateLoad::ChargeDecoded(const ModelSnapshot& snapshot,
                                      StateBudget::Charge& charge) const {
  return charge.Resize(SnapshotBytes(snapshot),
                       absl::StrCat("model '", model_, "', LoadState", merge_ ? " merge" : "",
                                    ": the state file's decoded state"));
}

absl::StatusOr<std::shared_ptr<Model>> StateLoad::Finish() {
  if (model_.empty()) {
    return absl::InvalidArgumentError("a LoadState stream without messages loads nothing");
  }
  const std::string where = absl::StrCat("model '", model_, "', LoadState");
  if (merge_) {
    // Looked up first: a merge into a model that does not exist says so, whatever the file.
    QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
    absl::StatusOr<ModelSnapshot> snapshot = DecodeStateFile(bytes_);
    if (!snapshot.ok()) return Annotate(snapshot.status(), where);
    StateBudget::Charge decoded(base_.limits.state_budget);
    QCAL_RETURN_IF_ERROR(ChargeDecoded(*snapshot, decoded));
    QCAL_RETURN_IF_ERROR(model->Merge(*snapshot));
    return model;
  }
  if (registry_.Find(model_).ok()) {
    return absl::AlreadyExistsError(
        absl::StrCat(where, ": model '", model_, "' already exists (delete it, or merge into it)"));
  }
  absl::StatusOr<ModelSnapshot> snapshot = DecodeStateFile(bytes_);
  if (!snapshot.ok()) return Annotate(snapshot.status(), where);
  StateBudget::Charge decoded(base_.limits.state_budget);
  QCAL_RETURN_IF_ERROR(ChargeDecoded(*snapshot, decoded));
  ModelConfig config = base_;
  config.name = model_;
  absl::StatusOr<std::shared_ptr<Model>> model = Model::FromSnapshot(std::move(config), *snapshot);
  if (!model.ok()) return Annotate(model.status(), "LoadState");
  // Another stream may have created the name meanwhile: the insert decides.
  QCAL_RETURN_IF_ERROR(Annotate(registry_.Insert(*model), where));
  return model;
}

}  // namespace qcal::server
