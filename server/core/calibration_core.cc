#include "server/core/calibration_core.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/base/status_util.h"
#include "server/storage/state_file.h"
#include "spdlog/spdlog.h"

namespace qcal::server {
namespace {

// `options` with `budget` as its models' state budget.
CoreOptions WithStateBudget(CoreOptions options, StateBudget* budget) {
  options.limits.state_budget = budget;
  return options;
}

}  // namespace

CalibrationCore::CalibrationCore(CoreOptions options, Metrics& metrics)
    : state_budget_(std::make_unique<StateBudget>(options.max_state_bytes)),
      options_(WithStateBudget(std::move(options), state_budget_.get())),
      metrics_(metrics),
      registry_(
          options_.max_models, [this](const std::string& name) { return ModelDeleted(name); },
          [this](Model& model) { return NewModel(model); }),
      inflight_budget_(options_.max_inflight_bytes, options_.max_inflight_wait, &metrics),
      idle_trimmer_(options_.idle_release_delay, &metrics),
      stream_watchdog_(options_.stream_idle, &metrics) {
  if (options_.model_ttl > absl::ZeroDuration()) {
    model_sweeper_ = std::make_unique<ModelSweeper>(
        registry_, options_.model_ttl, [this](const std::string&, const absl::Status& forgotten) {
          metrics_.ModelExpired();
          if (!forgotten.ok()) spdlog::error("--model-ttl: {}", std::string(forgotten.message()));
        });
  }
  metrics_.SetHeldSource([this] {
    // At most --max-models models, each counted under its reader lock: cheap at scrape rate.
    const std::vector<std::shared_ptr<Model>> models = registry_.List();
    int64_t quantizers = 0;
    for (const std::shared_ptr<Model>& model : models) quantizers += model->quantizer_count();
    return Metrics::HeldReading{.state_bytes = state_budget_->used_bytes(),
                                .state_limit_bytes = state_budget_->limit_bytes(),
                                .models = static_cast<int64_t>(models.size()),
                                .quantizers = quantizers};
  });
}

CalibrationCore::~CalibrationCore() { metrics_.SetHeldSource(nullptr); }

absl::StatusOr<ModelInfo> CalibrationCore::CreateModel(ModelConfig config, bool exist_ok) {
  if (config.backend == nullptr) config.backend = options_.backend;
  if (!config.histogram_layout.has_value()) {
    config.histogram_layout = options_.default_histogram_layout;
  }
  config.limits = options_.limits;
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                        registry_.Create(std::move(config), exist_ok));
  metrics_.AddModel(model->name());
  return model->Info();
}

absl::StatusOr<ModelInfo> CalibrationCore::GetModel(absl::string_view model) const {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> found, registry_.Find(model));
  return found->Info();
}

absl::StatusOr<std::shared_ptr<const Model>> CalibrationCore::WatchModel(
    absl::string_view model) const {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> found, registry_.Peek(model));
  return found;
}

std::vector<ModelInfo> CalibrationCore::ListModels() const {
  std::vector<ModelInfo> out;
  for (const std::shared_ptr<Model>& model : registry_.List()) out.push_back(model->Info());
  return out;
}

absl::Status CalibrationCore::DeleteModel(absl::string_view model) {
  // The registry calls ModelDeleted (its DeletedHook) before a model of the same name can be
  // created again.
  return registry_.Delete(model);
}

absl::Status CalibrationCore::ModelDeleted(absl::string_view model) {
  metrics_.RemoveModel(std::string(model));
  if (options_.durability != nullptr) {
    QCAL_RETURN_IF_ERROR(Annotate(options_.durability->Forget(std::string(model)),
                                  absl::StrCat("model '", model, "' was deleted, but")));
  }
  return absl::OkStatus();
}

absl::Status CalibrationCore::NewModel(Model& model) {
  if (options_.durability == nullptr) return absl::OkStatus();
  QCAL_RETURN_IF_ERROR(options_.durability->CheckNewModel(model.name()));
  return Annotate(options_.durability->Commit(model),
                  absl::StrCat("model '", model.name(), "' was not created"));
}

absl::Status CalibrationCore::CommitChange(Model& model, absl::string_view change) {
  if (options_.durability == nullptr) return absl::OkStatus();
  return Annotate(options_.durability->Commit(model),
                  absl::StrCat("model '", model.name(), "': ", change,
                               " is applied but not yet durable (the committer retries it)"));
}

absl::StatusOr<SessionSequences> CalibrationCore::Commit(absl::string_view model,
                                                         absl::string_view session_id) {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> found, registry_.Find(model));
  if (!session_id.empty()) {
    QCAL_RETURN_IF_ERROR(
        CheckSessionId(session_id, absl::StrCat("model '", found->name(), "', Commit")));
  }
  if (options_.durability != nullptr) {
    QCAL_RETURN_IF_ERROR(options_.durability->Commit(*found));
  }
  SessionSequences sequences =
      session_id.empty() ? SessionSequences{} : found->Sequences(session_id);
  if (options_.durability == nullptr) sequences.durable = sequences.applied;
  return sequences;
}

absl::StatusOr<ModelInfo> CalibrationCore::ResetModel(absl::string_view model) {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> found, registry_.Find(model));
  found->Reset();
  QCAL_RETURN_IF_ERROR(CommitChange(*found, "the reset"));
  return found->Info();
}

absl::StatusOr<AmaxTableForms> CalibrationCore::ComputeAmax(absl::string_view model,
                                                            const AmaxRequest& request,
                                                            TableForms forms) {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> found, registry_.Find(model));
  if (options_.before_amax_for_testing) options_.before_amax_for_testing(request.cancelled);
  absl::StatusOr<AmaxTableForms> out = found->ComputeAmax(request, forms);
  if (absl::IsCancelled(out.status())) metrics_.AmaxCancelled();
  return out;
}

absl::StatusOr<AmaxTableForms> CalibrationCore::GetAmaxTable(absl::string_view model,
                                                             TableForms forms) const {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> found, registry_.Find(model));
  return found->GetAmaxTable(forms);
}

absl::StatusOr<HistogramSnapshot> CalibrationCore::GetHistogram(absl::string_view model,
                                                                absl::string_view quantizer) const {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> found, registry_.Find(model));
  return found->GetHistogram(quantizer);
}

absl::StatusOr<OnnxExportResult> CalibrationCore::ExportOnnx(
    absl::string_view model, const std::optional<AmaxRequest>& compute, QdqTarget target,
    const std::optional<SentOnnx>& sent) {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> found, registry_.Find(model));
  absl::StatusOr<OnnxExportResult> out = found->ExportOnnx(compute, target, sent);
  if (absl::IsCancelled(out.status())) metrics_.AmaxCancelled();
  return out;
}

std::unique_ptr<RecordStream> CalibrationCore::OpenRecordStream(const CallControl& call) {
  return std::make_unique<RecordStream>(registry_, metrics_, options_.max_batch_bytes,
                                        inflight_budget_, idle_trimmer_.Begin(), call,
                                        options_.durability != nullptr);
}

absl::StatusOr<CalibrationCore::SavedState> CalibrationCore::SaveState(
    absl::string_view model) const {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> found, registry_.Find(model));
  SavedState out{.file = {}, .charge = StateBudget::Charge(state_budget_.get())};
  QCAL_RETURN_IF_ERROR(out.charge.Resize(
      2 * found->charged_bytes(),
      absl::StrCat("model '", found->name(), "': SaveState's copy of its state while it is sent")));
  {
    QCAL_ASSIGN_OR_RETURN(ModelSnapshot snapshot, found->Snapshot());
    out.file = EncodeStateFile(snapshot);
  }
  out.charge.Settle(static_cast<int64_t>(out.file.size()));
  return out;
}

std::unique_ptr<StateLoad> CalibrationCore::OpenStateLoad() {
  return std::make_unique<StateLoad>(
      registry_, ModelConfig{.backend = options_.backend, .limits = options_.limits},
      options_.max_batch_bytes);
}

absl::StatusOr<ModelInfo> CalibrationCore::FinishStateLoad(StateLoad& load) {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, load.Finish());
  // A load is a use, whatever time of last use the file carries.
  model->Touch();
  if (!load.merge()) metrics_.AddModel(model->name());
  // A new model was written before it was inserted (NewModel); a merge is written now.
  if (load.merge()) QCAL_RETURN_IF_ERROR(CommitChange(*model, "the merge"));
  return model->Info();
}

std::unique_ptr<OnnxUpload> CalibrationCore::OpenOnnxUpload() {
  return std::make_unique<OnnxUpload>(registry_, options_.max_batch_bytes,
                                      options_.limits.state_budget);
}

absl::StatusOr<OnnxUploadResult> CalibrationCore::FinishOnnxUpload(OnnxUpload& upload) {
  QCAL_ASSIGN_OR_RETURN(OnnxUploadResult result, upload.Finish());
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(upload.model()));
  QCAL_RETURN_IF_ERROR(CommitChange(*model, "the uploaded ONNX model"));
  return result;
}

std::unique_ptr<OnnxExport> CalibrationCore::OpenOnnxExport() {
  return std::make_unique<OnnxExport>(registry_, options_.max_batch_bytes,
                                      options_.limits.state_budget);
}

std::vector<std::shared_ptr<Model>> CalibrationCore::Models() const { return registry_.List(); }

absl::StatusOr<std::shared_ptr<Model>> CalibrationCore::RestoreModel(
    const ModelSnapshot& snapshot) {
  QCAL_ASSIGN_OR_RETURN(
      std::shared_ptr<Model> model,
      Model::FromSnapshot(
          {.name = snapshot.model, .backend = options_.backend, .limits = options_.limits},
          snapshot));
  // Read from the data dir: the sessions' sequences it holds are durable.
  model->MarkDurable(snapshot.sessions);
  // Time the server was down does not count toward --model-ttl: a maintenance window longer than
  // the ttl would otherwise delete every model at the restart.
  model->Touch();
  QCAL_RETURN_IF_ERROR(registry_.Insert(model, ModelRegistry::Origin::kRestored));
  metrics_.AddModel(model->name());
  return model;
}

}  // namespace qcal::server
