// The server's core API: what every front-end (gRPC now) calls, one function per operation.
// Independent of gRPC and protobuf; owns the model registry and reports to the metrics.
//
//   CalibrationCore core({.max_batch_bytes = 1 << 30}, metrics);
//   QCAL_ASSIGN_OR_RETURN(ModelInfo info, core.CreateModel({.name = "net"}));
//   auto stream = core.OpenRecordStream(call);
#ifndef QCAL_SERVER_CORE_CALIBRATION_CORE_H_
#define QCAL_SERVER_CORE_CALIBRATION_CORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/call_control.h"
#include "server/core/durability.h"
#include "server/core/idle_trimmer.h"
#include "server/core/inflight_budget.h"
#include "server/core/metrics.h"
#include "server/core/model.h"
#include "server/core/model_registry.h"
#include "server/core/model_sweeper.h"
#include "server/core/onnx_export.h"
#include "server/core/onnx_upload.h"
#include "server/core/record_stream.h"
#include "server/core/state_budget.h"
#include "server/core/state_load.h"
#include "server/core/stream_watchdog.h"

namespace qcal::server {

struct CoreOptions {
  // A batch larger than this is refused with RESOURCE_EXHAUSTED; also the limit of an ONNX model
  // sent by UploadOnnx or ExportOnnx.
  int64_t max_batch_bytes = int64_t{1} << 30;
  // Bytes that Record batches in flight may reserve in all (their bytes plus float32 decode
  // scratch); a batch that does not fit waits (see InflightBudget).
  int64_t max_inflight_bytes = int64_t{2} << 30;
  // How long such a batch may wait when its call has no deadline.
  absl::Duration max_inflight_wait = absl::Seconds(60);
  // Memory is given back (IdleTrimmer) after this long without a Record stream.
  absl::Duration idle_release_delay = absl::Seconds(2);
  // Where new models' calibrators live (--device); null means the CPU.
  std::shared_ptr<const CalibratorBackend> backend{};
  // Layout of a new model's histograms when its CreateModel leaves it unspecified
  // (--default-histogram-layout).
  kernels::HistogramLayout default_histogram_layout = kernels::HistogramLayout::kMergeable;
  // Bounds on every model's state and responses (--max-channels, --max-num-bins,
  // --max-response-bytes, --max-quantizers-per-model). Its state_budget is ignored: the core
  // makes the server's from max_state_bytes.
  ModelLimits limits{};
  // Models the server may hold (--max-models).
  int64_t max_models = std::numeric_limits<int64_t>::max();
  // Bytes all models may hold in calibration state, stored tables and ONNX models
  // (--max-state-bytes; StateBudget).
  int64_t max_state_bytes = std::numeric_limits<int64_t>::max();
  // Models no call used for longer are deleted (--model-ttl, ModelSweeper); zero: never.
  absl::Duration model_ttl = absl::ZeroDuration();
  // Record streams that receive nothing that long are ended (--stream-idle-seconds,
  // StreamWatchdog); zero: never.
  absl::Duration stream_idle = absl::ZeroDuration();
  // Where models' state is made durable (--data-dir: DiskDurability); nullptr: in memory only,
  // a session's durable sequence is its applied one. Not owned.
  Durability* durability = nullptr;
  // Tests only: called by ComputeAmax, with the call's cancellation, before the searches start
  // (a test holds a computation there to cancel it at a known point).
  std::function<void(const std::function<bool()>& cancelled)> before_amax_for_testing{};
};

class CalibrationCore {
 public:
  // Reports what the models hold to `metrics` (Metrics::SetHeldSource) until destroyed.
  CalibrationCore(CoreOptions options, Metrics& metrics);
  ~CalibrationCore();
  CalibrationCore(const CalibrationCore&) = delete;
  CalibrationCore& operator=(const CalibrationCore&) = delete;

  // Each returns the errors of the Model / ModelRegistry function it calls; an unknown model is
  // NOT_FOUND everywhere.
  // `exist_ok`: as ModelRegistry::Create's. With a Durability, a new model is written to it before
  // any call can see it: its file's write error (UNAVAILABLE, RESOURCE_EXHAUSTED for the quota)
  // refuses the model, and a crash after this returned keeps it.
  absl::StatusOr<ModelInfo> CreateModel(ModelConfig config, bool exist_ok = false);
  absl::StatusOr<ModelInfo> GetModel(absl::string_view model) const;
  std::vector<ModelInfo> ListModels() const;
  // With a durability, also removes the model's file: UNAVAILABLE naming the file when that fails
  // (the model is deleted from memory all the same).
  absl::Status DeleteModel(absl::string_view model);
  // With a Durability the reset model is written before this returns (UNAVAILABLE or
  // RESOURCE_EXHAUSTED naming the file when that fails: the reset stays applied, and the
  // committer writes it later).
  absl::StatusOr<ModelInfo> ResetModel(absl::string_view model);
  // A computation stopped by request.cancelled counts in qcal_compute_amax_cancelled_total.
  absl::StatusOr<AmaxTableForms> ComputeAmax(absl::string_view model, const AmaxRequest& request,
                                             TableForms forms = {});
  absl::StatusOr<AmaxTableForms> GetAmaxTable(absl::string_view model, TableForms forms = {}) const;
  absl::StatusOr<HistogramSnapshot> GetHistogram(absl::string_view model,
                                                 absl::string_view quantizer) const;
  absl::StatusOr<OnnxExportResult> ExportOnnx(absl::string_view model,
                                              const std::optional<AmaxRequest>& compute,
                                              QdqTarget target,
                                              const std::optional<SentOnnx>& sent = std::nullopt);
  // A durable point (the Commit RPC): with a Durability, writes the model's state if it changed
  // (Durability::Commit; UNAVAILABLE naming the file when the write fails); then `session_id`'s
  // sequences ({0, 0} for a session the model does not hold; durable == applied without a
  // Durability). INVALID_ARGUMENT for a session_id longer than 128 bytes.
  absl::StatusOr<SessionSequences> Commit(absl::string_view model,
                                          absl::string_view session_id = {});
  // The model's whole state as a serialized StateFile (storage/state_file.h), and its charge to
  // --max-state-bytes: the copy's bytes, held until the caller has sent them (concurrent
  // SaveStates would otherwise hold copies past any budget). RESOURCE_EXHAUSTED naming
  // --max-state-bytes when the budget lacks room for twice the model's state (its snapshot and
  // its encoded file exist together for a moment); NOT_FOUND for an unknown model.
  struct SavedState {
    std::string file;
    StateBudget::Charge charge;
  };
  absl::StatusOr<SavedState> SaveState(absl::string_view model) const;
  // A LoadState stream (files up to max_batch_bytes); FinishStateLoad ends it: the created or
  // merged model's info, or StateLoad::Finish's errors. With a Durability the model is on disk
  // when it returns: a new one is written before any call can see it (its write's error refuses
  // it), a merge after it (UNAVAILABLE or RESOURCE_EXHAUSTED when that fails: the merge stays
  // applied, and the committer writes it later).
  std::unique_ptr<StateLoad> OpenStateLoad();
  absl::StatusOr<ModelInfo> FinishStateLoad(StateLoad& load);
  // A Record stream for `call`, which must outlive it.
  std::unique_ptr<RecordStream> OpenRecordStream(const CallControl& call);
  std::unique_ptr<OnnxUpload> OpenOnnxUpload();
  // Ends an UploadOnnx stream: OnnxUpload::Finish, then, with a Durability, the model is written
  // before this returns (UNAVAILABLE or RESOURCE_EXHAUSTED naming the file when that fails: the
  // ONNX model is stored, and the committer writes it later).
  absl::StatusOr<OnnxUploadResult> FinishOnnxUpload(OnnxUpload& upload);
  std::unique_ptr<OnnxExport> OpenOnnxExport();

  // Every model, in name order (the committer's round).
  std::vector<std::shared_ptr<Model>> Models() const;
  // The model named `model` (NOT_FOUND as GetModel's), without marking it used: the dashboard
  // (server/dashboard/) only watches, and must not keep a model from its --model-ttl.
  absl::StatusOr<std::shared_ptr<const Model>> WatchModel(absl::string_view model) const;
  // Adds a model restored from the data dir at start (Model::FromSnapshot under snapshot.model,
  // with the server's backend and limits). FromSnapshot's errors; ALREADY_EXISTS for a name in
  // use.
  absl::StatusOr<std::shared_ptr<Model>> RestoreModel(const ModelSnapshot& snapshot);
  // Shutdown: from now on new Record streams are refused (UNAVAILABLE), so the drain ends.
  void BeginDrain() { draining_.store(true, std::memory_order_release); }
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  Metrics& metrics() { return metrics_; }
  const CoreOptions& options() const { return options_; }
  // The Record streams' budget and memory release, for tests and the metrics.
  const InflightBudget& inflight_budget() const { return inflight_budget_; }
  const IdleTrimmer& idle_trimmer() const { return idle_trimmer_; }
  // What all models hold against --max-state-bytes.
  const StateBudget& state_budget() const { return *state_budget_; }
  // Ends idle Record streams (the front-end registers each stream).
  StreamWatchdog& stream_watchdog() { return stream_watchdog_; }
  // Null without a --model-ttl.
  ModelSweeper* model_sweeper() { return model_sweeper_.get(); }

 private:
  // The registry's DeletedHook: what follows a model's deletion, by DeleteModel or the
  // --model-ttl sweep (from its thread), before its name can take a new model:
  // its metrics go, and its file in the data dir (Durability::Forget, whose error it returns).
  absl::Status ModelDeleted(absl::string_view model);
  // The registry's NewModelHook: with a Durability, the name's check and the new model's first
  // write (Durability::CheckNewModel, Commit).
  absl::Status NewModel(Model& model);
  // With a Durability, writes `model` after `change` (e.g. "the reset"), annotating a failure.
  absl::Status CommitChange(Model& model, absl::string_view change);

  // Before options_, whose limits point at it; it outlives every model.
  const std::unique_ptr<StateBudget> state_budget_;
  const CoreOptions options_;
  Metrics& metrics_;
  ModelRegistry registry_;
  InflightBudget inflight_budget_;
  IdleTrimmer idle_trimmer_;
  std::atomic<bool> draining_{false};
  StreamWatchdog stream_watchdog_;
  // Last: its thread uses the registry and the metrics.
  std::unique_ptr<ModelSweeper> model_sweeper_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_CALIBRATION_CORE_H_
