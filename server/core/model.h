// One calibrated model: its default descriptors, its quantizers (declared up front or created by
// their first Record), the amax table of the last ComputeAmax, and the uploaded float ONNX model.
// Thread-safe. Every mutating call validates everything first: a refused call changes nothing.
//
//   QCAL_ASSIGN_OR_RETURN(auto model, Model::Create({.name = "net"}));
//   QCAL_ASSIGN_OR_RETURN(BatchStats applied,
//                         model->Record("conv1._input_quantizer", shape, values, bytes));
//   QCAL_ASSIGN_OR_RETURN(AmaxTable table, model->ComputeAmax({.params = {.method = "mse"}}));
#ifndef QCAL_SERVER_CORE_MODEL_H_
#define QCAL_SERVER_CORE_MODEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "onnx/onnx_pb.h"
#include "server/core/model_limits.h"
#include "server/core/partial_state.h"
#include "server/core/quantizer_state.h"
#include "server/core/session_table.h"
#include "server/core/state_budget.h"
#include "server/device/calibrator.h"
#include "server/onnx/qdq_export.h"
#include "server/onnx/quantizer_binding.h"
#include "server/storage/model_snapshot.h"
#include "server/tables/amax_table.h"
#include "server/tables/compute_amax.h"
#include "server/tables/quantizer_spec.h"

namespace qcal::server {

struct ModelConfig {
  std::string name{};
  // Descriptors of quantizers first seen by Record (their `name` is ignored).
  QuantizerSpec default_input = DefaultInputSpec();
  QuantizerSpec default_weight = DefaultWeightSpec();
  // Quantizers declared up front; ResetModel keeps them.
  std::vector<QuantizerSpec> quantizers{};
  // Layout of the model's histogram calibrators (every QuantizerSpec::layout is set from it);
  // nullopt means kMergeable (CalibrationCore fills in the server's --default-histogram-layout).
  std::optional<kernels::HistogramLayout> histogram_layout{};
  // Where the quantizers' calibrators live (the server's --device); null means the CPU.
  std::shared_ptr<const CalibratorBackend> backend{};
  // The server's bounds on a model's state and responses.
  ModelLimits limits{};
};

// Which forms of an amax table a response carries (ComputeAmaxRequest.forms); the others are
// neither built nor sent.
struct TableForms {
  bool message = true;
  bool json = true;
  bool trt_cache = true;
};

struct QuantizerInfo {
  QuantizerSpec spec{};
  BatchStats stats{};
  // Histogram calibrators: the bins held now (spec.num_bins is the count it started with); 0
  // before its first non-zero value and for max calibrators.
  int64_t bins = 0;
  // Max calibrators: the amax values held (1 per tensor, or the channel count); 0 before data
  // and for histograms.
  int64_t amax_size = 0;
};

struct ModelInfo {
  std::string name{};
  kernels::HistogramLayout histogram_layout = kernels::HistogramLayout::kMergeable;
  QuantizerSpec default_input{};
  QuantizerSpec default_weight{};
  // In name order.
  std::vector<QuantizerInfo> quantizers{};
  bool has_onnx = false;
  // Method of the stored amax table; empty when there is none.
  std::string amax_method{};
  // With a stored ONNX model: quantizer -> the tensor it quantizes, as the export and the
  // TensorRT cache bind them now; quantizers bound to no tensor are absent. Empty without an
  // ONNX model, or when binding fails.
  std::map<std::string, std::string> onnx_bindings{};
};

// An amax table in its three forms (ComputeAmax: the table just computed; GetAmaxTable: the
// stored one).
struct AmaxTableForms {
  // What the response carries of the fields below (`table` is always filled: the core uses it).
  TableForms included{};
  AmaxTable table{};
  std::string json{};
  std::string trt_cache{};
  // Scales the TensorRT cache replaced (an amax of 0, a scale below the smallest normal float).
  std::vector<std::string> warnings{};
};

struct OnnxUploadResult {
  int64_t bytes = 0;
  int64_t opset = 0;
  // quantizer -> ONNX tensor, for the model's quantizers and the explicit pairs.
  std::map<std::string, std::string> bindings{};
};

// A float ONNX model sent with an ExportOnnx call (instead of the stored one).
struct SentOnnx {
  // Serialized ModelProto.
  std::string bytes{};
  // quantizer -> tensor pairs that override the automatic matching, as UploadOnnx's.
  std::map<std::string, std::string> tensor_map{};
};

struct OnnxExportResult {
  // Serialized ModelProto with the Q/DQ pairs.
  std::string bytes{};
  std::vector<std::string> warnings{};
  // The method of the amax table the export used: the one `compute` asked for, else the stored
  // table's.
  std::string amax_method{};
  // True when `compute` computed the table for this export; false for the stored table.
  bool computed = false;
  // Every node input a placement rule considered (QdqResult::explain), in graph order. Filled
  // always by Model::ExportOnnx; OnnxExport::Finish keeps it only when the stream asked for it.
  std::vector<ExplainEntry> explain{};
};

// A batch of an exactly-once session (RecordRequest.session_id and sequence).
struct SequencedBatch {
  // 1 to kMaxSessionIdBytes bytes (the caller checks it).
  absl::string_view session_id{};
  // >= 1.
  int64_t sequence = 0;
};

// What a model is charged (--max-state-bytes) besides its quantizers: kModelBytes plus its name;
// its stored ONNX model's in-memory size (protobuf's SpaceUsedLong); its stored amax table's
// AmaxTableBytes; each session it holds SessionBytes (session_table.h).
inline constexpr int64_t kModelBytes = 4096;
int64_t AmaxTableBytes(const AmaxTable& table);
// What a decoded state file holds in memory, charged (--max-state-bytes) while a LoadState holds
// it: a quantizer kQuantizerBytes plus its name, 8 bytes a histogram count, 4 bytes an edge or a
// maximum; the whole file kModelBytes plus those, its ONNX model's serialized bytes, 64 bytes
// plus the strings a tensor_map entry or a session, and its amax table's AmaxTableBytes.
int64_t QuantizerSnapshotBytes(const QuantizerSnapshot& quantizer);
int64_t SnapshotBytes(const ModelSnapshot& snapshot);

class Model {
 public:
  // INVALID_ARGUMENT for a model or declared quantizer name that is not a name (names.h), a
  // refused descriptor (ValidateSpec), or a quantizer declared twice; RESOURCE_EXHAUSTED for more
  // declared quantizers than limits.max_quantizers, or when limits.state_budget has no room for
  // the model and its quantizers (nothing is then held).
  static absl::StatusOr<std::shared_ptr<Model>> Create(ModelConfig config);

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // A model holding `snapshot`'s whole state under `config.name`, with `config`'s backend and
  // limits (its other fields are ignored: the snapshot's configuration is used). Everything is
  // checked first: Create's errors for the configuration (RESOURCE_EXHAUSTED for specs past the
  // limits); INVALID_ARGUMENT for a quantizer named twice or not a name, for quantizer states
  // QuantizerState::Restore refuses (RESOURCE_EXHAUSTED for too many channels), for an ONNX model
  // UploadOnnx would refuse, and for an amax table entry that is not a name or whose amax is
  // negative or not finite, and for a session id not of 1 to 128 bytes or a sequence < 1;
  // RESOURCE_EXHAUSTED when limits.state_budget has no room for the state, its sessions included.
  // The snapshot's sessions are restored as applied, durable 0: a Durability that loaded the
  // snapshot from its disk calls MarkDurable(snapshot.sessions).
  static absl::StatusOr<std::shared_ptr<Model>> FromSnapshot(ModelConfig config,
                                                             const ModelSnapshot& snapshot);

  const std::string& name() const { return name_; }
  kernels::HistogramLayout histogram_layout() const { return layout_; }

  // When a call last used the model (ModelRegistry::Find marks it), in seconds since the Unix
  // epoch: --model-ttl counts from it. Creation, and a restore from a snapshot without it, count
  // as a use.
  int64_t last_used_unix_seconds() const { return last_used_.load(std::memory_order_relaxed); }
  void Touch(absl::Time now = absl::Now());

  // Bytes charged to the state budget now: the model, its quantizers, ONNX model, table and
  // sessions.
  int64_t charged_bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  // Quantizers the model holds now (qcal_quantizers).
  int64_t quantizer_count() const ABSL_LOCKS_EXCLUDED(mu_);

  // Applies one decoded batch (float32, prod(shape) values; `bytes` is its size on the wire) to
  // `quantizer`, creating it with the default descriptor of its role if it is new. Atomic: on
  // error nothing changes (not even the quantizer's creation).
  // Errors: INVALID_ARGUMENT for a new quantizer whose name is not a name (names.h), an axis
  // outside the batch's rank or a channel count that differs from earlier batches;
  // RESOURCE_EXHAUSTED for a new quantizer past limits.max_quantizers, and QuantizerState's
  // (--max-channels, --max-state-bytes). (A histogram whose range outgrows its bin limit is
  // coarsened, kernels/histogram.h, not refused.)
  absl::StatusOr<BatchStats> Record(absl::string_view quantizer, std::span<const int64_t> shape,
                                    std::span<const float> values, int64_t bytes);

  // Record and RecordPartial for a batch of a session: checked against, and advancing, the
  // session's last applied sequence in the same critical section that applies the batch (so the
  // state holds a batch exactly when the session's sequence says so, Snapshot included, and two
  // streams of one session never both apply one sequence). nullopt for a duplicate (a sequence at
  // or below the last applied), which changes nothing. A new session is added with its first
  // batch, charged SessionBytes (session_table.h) to limits.state_budget, or not at all.
  // Errors: those of Record / RecordPartial (a refused first batch adds no session);
  // FAILED_PRECONDITION naming the missing sequences for one past the next; RESOURCE_EXHAUSTED
  // naming the model, the session and --max-state-bytes when the budget has no room for a new
  // session (nothing changes).
  absl::StatusOr<std::optional<BatchStats>> RecordSequenced(absl::string_view quantizer,
                                                            std::span<const int64_t> shape,
                                                            std::span<const float> values,
                                                            int64_t bytes,
                                                            const SequencedBatch& sequenced);
  absl::StatusOr<std::optional<BatchStats>> RecordPartialSequenced(absl::string_view quantizer,
                                                                   const PartialState& partial,
                                                                   int64_t bytes,
                                                                   const SequencedBatch& sequenced);

  // A session's last applied sequence and the last one marked durable ({0, 0} for a session the
  // model does not hold: never seen, or forgotten among more than SessionTable::kMaxSessions).
  SessionSequences Sequences(absl::string_view session_id) const;
  // Called by a Durability once a snapshot's state is on disk, with that snapshot's sessions:
  // their durable sequences rise to those (never past what was applied, never down).
  void MarkDurable(const std::map<std::string, int64_t>& sessions);

  // Merges a pre-aggregated batch (PartialState; `bytes` is its size on the wire) into
  // `quantizer`, creating it with the default descriptor of its role if it is new, as Record
  // does. Atomic: on error nothing changes. Errors: INVALID_ARGUMENT for a new quantizer's name
  // that is not a name; those of QuantizerState::ApplyPartial.
  absl::StatusOr<BatchStats> RecordPartial(absl::string_view quantizer, const PartialState& partial,
                                           int64_t bytes);

  // The whole state (configuration, quantizers, ONNX with tensor map, amax table, the sessions'
  // applied sequences), taken under
  // the model's exclusive lock so that it holds each batch entirely or not at all; `version`, when
  // given, gets the version() of the state it holds. INTERNAL for a device failure.
  absl::StatusOr<ModelSnapshot> Snapshot(uint64_t* version = nullptr) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // For the data dir (durability.h): a number that every change of the state takes anew (Record
  // batches and partial states, Reset, UploadOnnx, ExportOnnx and ComputeAmax storing, Merge;
  // creation too). No two states of any model of this process share one, so a store that wrote
  // the snapshot of version v knows the model is unchanged while version() == v.
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  // Set when the registry drops the model (DeleteModel): a committer that still holds it must not
  // write it back.
  void Retire() { retired_.store(true, std::memory_order_release); }
  bool retired() const { return retired_.load(std::memory_order_acquire); }

  // Adds `snapshot`'s calibrator state and counters into this model (LoadState with merge).
  // Everything is checked and the merged state built aside first; it is then swapped in under
  // the model's exclusive lock (Record streams wait meanwhile, and lose nothing), so a refused
  // merge changes nothing. Quantizers only in the snapshot are created with their spec; ones in
  // both add their states (mergeable histograms exactly, maxima elementwise, reference
  // histograms only with identical edges) and counters. The model keeps its sessions (the
  // snapshot's are ignored: their sequences number batches sent to another model), its ONNX model
  // (takes
  // the snapshot's when it has none); its stored amax table is dropped.
  // Errors: FAILED_PRECONDITION naming the first difference for another layout, other default
  // descriptors or declared quantizers, a quantizer in both with another spec, reference
  // histograms whose edges differ, or channel counts that differ; OUT_OF_RANGE when a counter or
  // count would overflow; FromSnapshot's INVALID_ARGUMENT and RESOURCE_EXHAUSTED cases for the
  // snapshot's own state; RESOURCE_EXHAUSTED when the merged model would hold more than
  // limits.max_quantizers, or --max-state-bytes has no room for what the merge builds beside the
  // current state (nothing is then changed): the merged quantizer states (each holds its own
  // charge as it is built, and the replaced ones give theirs back at the swap), and, charged for
  // the call, the copies it works on: the snapshot's parsed ONNX model, and for one quantizer at a
  // time the snapshot's state copied, the model's exported (its charged_bytes()) and their sum.
  absl::Status Merge(const ModelSnapshot& snapshot) ABSL_LOCKS_EXCLUDED(mu_);

  // Binds the quantizers to the stored ONNX model, if any, for onnx_bindings.
  // What Record would say of a batch of `shape` for `quantizer` before its values exist (its
  // header has arrived), so that a batch the quantizer can never take is refused before its bytes
  // are received: INVALID_ARGUMENT for a new quantizer's name that is not a name, or an axis
  // outside the rank or a changed channel count; RESOURCE_EXHAUSTED above limits.max_channels.
  absl::Status CheckBatchShape(absl::string_view quantizer, std::span<const int64_t> shape) const;

  ModelInfo Info() const;

  // The first difference between this model's configuration (histogram layout, default
  // descriptors and declared quantizers, in name order) and `other`'s, as "model 'm' exists with
  // default_input num_bins 2048, not 4096"; nullopt when they are equal. Both were built by Create,
  // so their defaults are filled in; the order of declared quantizers does not matter.
  std::optional<std::string> ConfigDifference(const Model& other) const ABSL_LOCKS_EXCLUDED(mu_);

  // Drops the collected data, the quantizers Record created, the amax table and the statistics;
  // keeps the defaults, the declared quantizers (emptied) and the uploaded ONNX. Keeps the
  // sessions' sequences too: a client that resends batches after the reset (its stream broke
  // before it learned they were applied) must see them dropped, not counted into the fresh
  // data, and its next batch continues its count instead of hitting a gap.
  void Reset();

  // Computes amax for every quantizer with data, stores the table (replacing the previous one)
  // and returns that table in the `forms` asked for, built from the computed table (a concurrent
  // ComputeAmax cannot swap it). The searches run without the model's lock (on snapshots of the
  // quantizers' state), spread over the cores, and poll request.cancelled.
  // Errors, all checked before anything is stored: those of NormalizeMethodParams for the request
  // and each override; INVALID_ARGUMENT for an override key that is not a name, NOT_FOUND for one
  // naming a quantizer the model lacks; FAILED_PRECONDITION when no quantizer has data yet; those
  // of QuantizerState::ComputeAmax (CANCELLED included) and TrtCacheText; RESOURCE_EXHAUSTED when
  // the response would pass limits.max_response_bytes, or --max-state-bytes has no room to store
  // the table (AmaxTableBytes).
  absl::StatusOr<AmaxTableForms> ComputeAmax(const AmaxRequest& request, TableForms forms = {});

  // The stored table in the `forms` asked for (the TensorRT cache keyed by ONNX tensor names once
  // an ONNX model is uploaded). FAILED_PRECONDITION when no table was computed since the last
  // reset; RESOURCE_EXHAUSTED when the response would pass limits.max_response_bytes.
  absl::StatusOr<AmaxTableForms> GetAmaxTable(TableForms forms = {}) const;

  // NOT_FOUND for an unknown quantizer (INVALID_ARGUMENT when the name is not a name);
  // FAILED_PRECONDITION for a max calibrator.
  absl::StatusOr<HistogramSnapshot> GetHistogram(absl::string_view quantizer) const;

  // The amax `params` would pick for one quantizer, computed now and stored nowhere (the
  // dashboard shows every method's): QuantizerState::ComputeAmax on a snapshot of its state,
  // charged to --max-state-bytes for that copy while it runs, as ComputeAmax's searches are.
  // A max calibrator reports its max whatever the method.
  // Errors: NOT_FOUND for an unknown quantizer (INVALID_ARGUMENT when the name is not a name);
  // NormalizeMethodParams'; RESOURCE_EXHAUSTED when the budget has no room for the copy;
  // QuantizerState::ComputeAmax's (FAILED_PRECONDITION without data; CANCELLED when
  // `cancelled`, polled by the search, returned true).
  absl::StatusOr<QuantizerAmax> QuantizerAmaxOf(
      absl::string_view quantizer, const MethodParams& params,
      const std::function<bool()>* cancelled = nullptr) const;

  // Parses and checks a serialized float ONNX model and replaces the stored one only if it is
  // valid; `tensor_map` (quantizer -> tensor) overrides the automatic matching.
  // Errors: INVALID_ARGUMENT for a tensor_map key or value that is not a name (names.h); those
  // of ParseOnnxModel (INVALID_ARGUMENT: malformed, refused by the checker, opset < 13) and
  // BindQuantizers (INVALID_ARGUMENT: a pair naming a tensor the model lacks); RESOURCE_EXHAUSTED
  // when --max-state-bytes has no room for the parsed model (less the one it replaces).
  absl::StatusOr<OnnxUploadResult> UploadOnnx(const std::string& bytes,
                                              std::map<std::string, std::string> tensor_map);

  // An ONNX model with Q/DQ pairs: `sent` when given (parsed and checked as UploadOnnx does),
  // else the stored one; from a table computed now by `compute`, else the stored table.
  // All or nothing: only when the export succeeds are `sent` (with its tensor map) and the
  // computed table stored, together; a refused export changes nothing.
  // Errors: FAILED_PRECONDITION without `sent` and a stored ONNX model, or without `compute` and
  // a stored table; those of UploadOnnx for `sent`; those of ComputeAmax and ExportQdq;
  // RESOURCE_EXHAUSTED when --max-state-bytes has no room to store `sent` or the table, or for
  // the copies the export works on while it runs (the searches' copies, as ComputeAmax's, plus
  // twice the float graph's in-memory bytes: the QDQ graph and its serialization).
  absl::StatusOr<OnnxExportResult> ExportOnnx(const std::optional<AmaxRequest>& compute,
                                              QdqTarget target,
                                              const std::optional<SentOnnx>& sent = std::nullopt,
                                              Fp8Ops fp8_ops = Fp8Ops::kOnnx);

 private:
  explicit Model(ModelConfig config);

  // The quantizer named `name`, or nullptr.
  std::shared_ptr<QuantizerState> FindLocked(absl::string_view name) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The quantizer named `name`: NOT_FOUND when the model lacks it (INVALID_ARGUMENT for a name
  // that is not a name).
  absl::StatusOr<std::shared_ptr<QuantizerState>> FindQuantizer(absl::string_view name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // The specs of the declared quantizers, by name.
  std::map<std::string, QuantizerSpec> DeclaredSpecs() const ABSL_LOCKS_EXCLUDED(mu_);
  // Applies `apply` to `quantizer`'s state; for a quantizer not seen before: create (with the
  // role's default descriptor), apply, insert, under the writer lock, so a refused batch creates
  // nothing.
  // With `sequenced`, under the session's lock (taken after mu_): adds the session when new
  // (charged), checks the sequence, applies, advances it; nullopt for a duplicate. A refused
  // batch of a new session forgets it again.
  absl::StatusOr<std::optional<BatchStats>> ApplyTo(
      absl::string_view quantizer,
      const std::function<absl::StatusOr<BatchStats>(QuantizerState&)>& apply,
      const SequencedBatch* sequenced);
  // What a table computation takes from the model under its lock: the quantizers with data, each
  // with its normalized method, in name order. Errors as ComputeAmax's request checks.
  struct TablePlan {
    std::string method{};
    std::vector<std::shared_ptr<QuantizerState>> quantizers{};
    std::vector<MethodParams> params{};
  };
  absl::StatusOr<TablePlan> PlanTableLocked(const AmaxRequest& request) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // What a plan's searches copy at once: the largest kernels::MaxParallelism() states (each
  // search copies its quantizer's state while it runs).
  static int64_t SearchCopyBytes(const TablePlan& plan);
  // Runs a plan's searches without the model's lock, in parallel; errors as ComputeAmax (the first
  // failing quantizer in name order).
  absl::StatusOr<AmaxTable> RunPlan(const TablePlan& plan,
                                    const std::function<bool()>& cancelled) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Gives the state a new version(); called with mu_ held (shared by Record, whose batches apply
  // under it, so a snapshot never sees a batch without its version).
  void Changed();
  // Stores `table` unless a Reset happened since `generation` was read; the budget's
  // RESOURCE_EXHAUSTED (nothing stored) when it has no room for it.
  absl::Status StoreTable(const AmaxTable& table, uint64_t generation) ABSL_LOCKS_EXCLUDED(mu_);
  // What the TensorRT cache keys depend on: the stored ONNX model (null before UploadOnnx), its
  // tensor map, and the names to bind (all quantizers plus those the tensor map names).
  struct OnnxKeys {
    std::shared_ptr<const onnx::ModelProto> onnx{};
    std::map<std::string, std::string> tensor_map{};
    std::vector<std::string> names{};
  };
  OnnxKeys OnnxKeysLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // `table` in `forms` (the TensorRT cache text keyed by `keys`); logs the cache's warnings.
  // RESOURCE_EXHAUSTED, before building the JSON, when the response could pass
  // limits_.max_response_bytes.
  absl::StatusOr<AmaxTableForms> FormsOf(AmaxTable table, const OnnxKeys& keys,
                                         TableForms forms) const;
  // A sent ONNX model parsed, with the quantizers (those of the model plus the tensor map's)
  // bound as UploadOnnx binds them; errors as UploadOnnx, prefixed by `where`.
  struct ParsedOnnx {
    std::shared_ptr<const onnx::ModelProto> onnx{};
    std::map<std::string, QuantizerBinding> bindings{};
  };
  absl::StatusOr<ParsedOnnx> ParseAndBind(const std::string& bytes,
                                          const std::map<std::string, std::string>& tensor_map,
                                          const std::string& where) const ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const std::string name_;
  const kernels::HistogramLayout layout_;
  const QuantizerSpec default_input_;
  const QuantizerSpec default_weight_;
  const std::shared_ptr<const CalibratorBackend> backend_;
  const ModelLimits limits_;

  // Record holds it shared while applying a batch, so Reset and ComputeAmax (exclusive) see each
  // batch entirely or not at all. Each quantizer has its own mutex for its data.
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<QuantizerState>, std::less<>> quantizers_
      ABSL_GUARDED_BY(mu_);
  // nullopt until ComputeAmax; cleared by Reset.
  std::optional<AmaxTable> table_ ABSL_GUARDED_BY(mu_);
  // Immutable once stored; nullptr until UploadOnnx.
  std::shared_ptr<const onnx::ModelProto> onnx_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> tensor_map_ ABSL_GUARDED_BY(mu_);
  // Sessions' sequences (own locks; each session's lock is taken after mu_, the table's after
  // both). Changed only with mu_ held (shared), so Snapshot's exclusive lock sees them consistent
  // with the quantizers. Holds its own charge of the state budget.
  SessionTable sessions_;
  // Incremented by Reset, so a table computed before a Reset is not stored after it.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // What the model is charged besides its quantizers (which hold their own charges): kModelBytes
  // and the name; the stored ONNX model; the stored amax table.
  StateBudget::Charge own_charge_ ABSL_GUARDED_BY(mu_);
  StateBudget::Charge onnx_charge_ ABSL_GUARDED_BY(mu_);
  StateBudget::Charge table_charge_ ABSL_GUARDED_BY(mu_);

  // Seconds since the Unix epoch (last_used_unix_seconds).
  std::atomic<int64_t> last_used_{0};
  // See version(); set under mu_ (shared or exclusive), read anywhere.
  std::atomic<uint64_t> version_;
  std::atomic<bool> retired_{false};
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_MODEL_H_
