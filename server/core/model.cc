#include "server/core/model.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/parallel.h"
#include "server/base/names.h"
#include "server/base/status_util.h"
#include "server/device/cpu_calibrator.h"
#include "server/onnx/onnx_model.h"
#include "server/onnx/quantizer_binding.h"
#include "server/storage/snapshot_merge.h"
#include "server/tables/amax_table_json.h"
#include "server/tables/trt_cache.h"
#include "spdlog/spdlog.h"

namespace qcal::server {
namespace {

// quantizer -> tensor it quantizes, from BindQuantizers' result.
std::map<std::string, std::string> TensorNames(
    const std::map<std::string, QuantizerBinding>& bindings) {
  std::map<std::string, std::string> out;
  for (const auto& [quantizer, binding] : bindings) out.emplace(quantizer, binding.tensor);
  return out;
}

// Every key and value of a tensor_map must be a name.
absl::Status CheckTensorMap(const std::map<std::string, std::string>& tensor_map,
                            absl::string_view where) {
  for (const auto& [quantizer, tensor] : tensor_map) {
    QCAL_RETURN_IF_ERROR(
        CheckName(absl::StrCat(where, ": quantizer name in tensor_map"), quantizer));
    QCAL_RETURN_IF_ERROR(CheckName(
        absl::StrCat(where, ": ONNX tensor name of quantizer '", quantizer, "' in tensor_map"),
        tensor));
  }
  return absl::OkStatus();
}

absl::Status ResponseTooLarge(int64_t bytes, const ModelLimits& limits, absl::string_view where) {
  return absl::ResourceExhaustedError(absl::StrCat(
      where, ": the amax table response would be about ", bytes,
      " bytes, more than the server's --max-response-bytes ", limits.max_response_bytes,
      "; nothing was stored. Ask for fewer forms (ComputeAmaxRequest.forms: `qcal amax --format "
      "table` or `--format trt`, or the C++ client's ComputeAmaxOptions::forms), or fewer "
      "channels"));
}

// An upper bound of the encoded size of `table`'s message and JSON forms (the TensorRT cache is
// measured once built, which is cheap), so that a response too large to send is refused before
// the JSON text is built and anything is stored.
absl::StatusOr<int64_t> ResponseBound(const AmaxTable& table, TableForms forms,
                                      const ModelLimits& limits, absl::string_view where) {
  // Per quantizer and per amax value: the message's field tags and lengths (a packed float is 4
  // bytes), and the JSON's keys and escapes (at most 2 bytes per name byte) and values: the table
  // is dumped with an indent of 2, so each amax of an array stands on its own line, a newline, 8
  // spaces, at most 15 characters of a float32's shortest form (-1.17549435e-38) and a comma.
  constexpr int64_t kMessagePerQuantizer = 96, kMessagePerAmax = 5;
  constexpr int64_t kJsonPerQuantizer = 256, kJsonPerAmax = 26;
  int64_t bytes = 64 + 2 * static_cast<int64_t>(table.model.size() + table.method.size());
  for (const auto& [name, entry] : table.quantizers) {
    const int64_t values = static_cast<int64_t>(entry.amax.size());
    const int64_t name_bytes = static_cast<int64_t>(name.size() + entry.method.size());
    if (forms.message) bytes += kMessagePerQuantizer + name_bytes + kMessagePerAmax * values;
    if (forms.json) bytes += kJsonPerQuantizer + 2 * name_bytes + kJsonPerAmax * values;
  }
  if (bytes > limits.max_response_bytes) return ResponseTooLarge(bytes, limits, where);
  return bytes;
}

std::string AxisText(const std::optional<int>& axis) {
  return axis.has_value() ? absl::StrCat("axis ", *axis) : "per-tensor (no axis)";
}

// The first field in which `have` differs from `want`, as "num_bins 2048, not 4096"; nullopt
// when they are equal. Names are not compared.
std::optional<std::string> SpecDifference(const QuantizerSpec& have, const QuantizerSpec& want) {
  if (have.format != want.format) {
    return absl::StrCat("format ", kernels::QuantFormatName(have.format), ", not ",
                        kernels::QuantFormatName(want.format));
  }
  if (have.num_bits != want.num_bits) {
    return absl::StrCat("num_bits ", have.num_bits, ", not ", want.num_bits);
  }
  if (have.is_unsigned != want.is_unsigned) {
    return absl::StrCat("unsigned ", have.is_unsigned ? "true" : "false", ", not ",
                        want.is_unsigned ? "true" : "false");
  }
  if (have.axis != want.axis) {
    return absl::StrCat(AxisText(have.axis), ", not ", AxisText(want.axis));
  }
  if (have.calibrator != want.calibrator) {
    return absl::StrCat("calibrator ", CalibratorKindName(have.calibrator), ", not ",
                        CalibratorKindName(want.calibrator));
  }
  if (have.num_bins != want.num_bins) {
    return absl::StrCat("num_bins ", have.num_bins, ", not ", want.num_bins);
  }
  if (have.skip_zeros != want.skip_zeros) {
    return absl::StrCat("skip_zeros ", have.skip_zeros ? "true" : "false", ", not ",
                        want.skip_zeros ? "true" : "false");
  }
  return std::nullopt;
}

// What configurations compare: ConfigDifference (CreateModel with exist_ok) and Merge.
struct ConfigParts {
  kernels::HistogramLayout layout = kernels::HistogramLayout::kMergeable;
  QuantizerSpec default_input{};
  QuantizerSpec default_weight{};
  std::map<std::string, QuantizerSpec> declared{};
};

// The first difference of `have` from `want` as "<where> with default_input num_bins 2048, not
// 4096"; `other` names want's side ("the request").
std::optional<std::string> PartsDifference(const ConfigParts& have, const ConfigParts& want,
                                           absl::string_view where, absl::string_view other) {
  if (have.layout != want.layout) {
    return absl::StrCat(where, " with histogram_layout ", kernels::HistogramLayoutName(have.layout),
                        ", not ", kernels::HistogramLayoutName(want.layout), " as ", other, " has");
  }
  if (std::optional<std::string> diff = SpecDifference(have.default_input, want.default_input)) {
    return absl::StrCat(where, " with default_input ", *diff);
  }
  if (std::optional<std::string> diff = SpecDifference(have.default_weight, want.default_weight)) {
    return absl::StrCat(where, " with default_weight ", *diff);
  }
  auto h = have.declared.begin();
  auto w = want.declared.begin();
  while (h != have.declared.end() || w != want.declared.end()) {
    if (w == want.declared.end() || (h != have.declared.end() && h->first < w->first)) {
      return absl::StrCat(where, " with declared quantizer '", h->first, "', which ", other,
                          " does not declare");
    }
    if (h == have.declared.end() || w->first < h->first) {
      return absl::StrCat(where, " without declared quantizer '", w->first, "', which ", other,
                          " declares");
    }
    if (std::optional<std::string> diff = SpecDifference(h->second, w->second)) {
      return absl::StrCat(where, " with quantizer '", h->first, "' ", *diff);
    }
    ++h;
    ++w;
  }
  return std::nullopt;
}

// Every amax table entry is a name with finite amax values >= 0 (as ComputeAmax stores them).
absl::Status CheckAmaxTable(const AmaxTable& table, absl::string_view where) {
  for (const auto& [name, entry] : table.quantizers) {
    QCAL_RETURN_IF_ERROR(
        CheckName(absl::StrCat(where, ": quantizer name in the amax table"), name));
    for (size_t i = 0; i < entry.amax.size(); ++i) {
      if (!std::isfinite(entry.amax[i]) || entry.amax[i] < 0.0f) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": amax table entry '", name,
                                                       "' has amax[", i, "] ", entry.amax[i],
                                                       "; amax values are finite and >= 0"));
      }
    }
  }
  return absl::OkStatus();
}

// In-memory bytes of a parsed ONNX model, charged while it is stored.
int64_t OnnxBytes(const onnx::ModelProto& onnx) {
  return static_cast<int64_t>(onnx.SpaceUsedLong());
}

// Versions of model states (Model::version): one sequence for the process, so a model deleted
// and created again under its name never repeats a version its file was written with.
uint64_t NextVersion() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

int64_t AmaxTableBytes(const AmaxTable& table) {
  // Per entry: the map node, the QuantizerAmax and its strings (the name twice: key and field).
  constexpr int64_t kTableBytes = 256, kEntryBytes = 256;
  int64_t bytes = kTableBytes + static_cast<int64_t>(table.model.size() + table.method.size());
  for (const auto& [name, entry] : table.quantizers) {
    bytes += kEntryBytes + 2 * static_cast<int64_t>(name.size()) +
             static_cast<int64_t>(entry.method.size()) +
             4 * static_cast<int64_t>(entry.amax.size());
  }
  return bytes;
}

int64_t QuantizerSnapshotBytes(const QuantizerSnapshot& quantizer) {
  int64_t bytes = kQuantizerBytes + static_cast<int64_t>(quantizer.spec.name.size());
  if (const auto* max = std::get_if<MaxValues>(&quantizer.state)) {
    bytes += 4 * static_cast<int64_t>(max->amax.size());
  } else if (const auto* mergeable = std::get_if<kernels::MergeableState>(&quantizer.state)) {
    bytes += 8 * static_cast<int64_t>(mergeable->counts.size());
  } else if (const auto* reference =
                 std::get_if<kernels::Histogram::ReferenceState>(&quantizer.state)) {
    bytes += 8 * static_cast<int64_t>(reference->counts.size()) +
             4 * static_cast<int64_t>(reference->edges.size());
  }
  return bytes;
}

int64_t SnapshotBytes(const ModelSnapshot& snapshot) {
  constexpr int64_t kEntryBytes = 64;
  int64_t bytes = kModelBytes + static_cast<int64_t>(snapshot.model.size() + snapshot.onnx.size());
  for (const QuantizerSnapshot& quantizer : snapshot.quantizers) {
    bytes += QuantizerSnapshotBytes(quantizer);
  }
  for (const auto& [tensor, quantizer] : snapshot.tensor_map) {
    bytes += kEntryBytes + static_cast<int64_t>(tensor.size() + quantizer.size());
  }
  for (const auto& [session_id, sequence] : snapshot.sessions) {
    bytes += kEntryBytes + static_cast<int64_t>(session_id.size());
  }
  if (snapshot.amax_table.has_value()) bytes += AmaxTableBytes(*snapshot.amax_table);
  return bytes;
}

absl::StatusOr<std::shared_ptr<Model>> Model::Create(ModelConfig config) {
  QCAL_RETURN_IF_ERROR(CheckName("model name", config.name));
  const std::string where = absl::StrCat("model '", config.name, "'");
  if (config.backend == nullptr) config.backend = CpuBackend();
  if (!config.histogram_layout.has_value()) {
    config.histogram_layout = kernels::HistogramLayout::kMergeable;
  }
  config.default_input.name.clear();
  config.default_weight.name.clear();
  config.default_input.layout = *config.histogram_layout;
  config.default_weight.layout = *config.histogram_layout;
  for (QuantizerSpec& spec : config.quantizers) spec.layout = *config.histogram_layout;
  QCAL_RETURN_IF_ERROR(
      Annotate(ValidateSpec(config.default_input), absl::StrCat(where, ", default_input")));
  QCAL_RETURN_IF_ERROR(
      Annotate(ValidateSpec(config.default_weight), absl::StrCat(where, ", default_weight")));
  QCAL_RETURN_IF_ERROR(Annotate(CheckSpecLimits(config.default_input, config.limits),
                                absl::StrCat(where, ", default_input")));
  QCAL_RETURN_IF_ERROR(Annotate(CheckSpecLimits(config.default_weight, config.limits),
                                absl::StrCat(where, ", default_weight")));
  QCAL_RETURN_IF_ERROR(
      CheckQuantizerCount(static_cast<int64_t>(config.quantizers.size()), config.limits, where));
  StateBudget::Charge own_charge(config.limits.state_budget);
  QCAL_RETURN_IF_ERROR(
      own_charge.Resize(kModelBytes + static_cast<int64_t>(config.name.size()), where));

  std::map<std::string, std::shared_ptr<QuantizerState>, std::less<>> declared;
  for (QuantizerSpec& spec : config.quantizers) {
    QCAL_RETURN_IF_ERROR(CheckName(absl::StrCat(where, ": declared quantizer name"), spec.name));
    if (declared.contains(spec.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": quantizer '", spec.name, "' is declared twice"));
    }
    const std::string name = spec.name;
    absl::StatusOr<std::unique_ptr<QuantizerState>> state =
        QuantizerState::Create(std::move(spec), /*declared=*/true, *config.backend, config.limits);
    if (!state.ok()) return Annotate(state.status(), where);
    declared.emplace(name, std::move(*state));
  }

  std::shared_ptr<Model> model(new Model(std::move(config)));
  absl::MutexLock lock(&model->mu_);
  model->quantizers_ = std::move(declared);
  model->own_charge_ = std::move(own_charge);
  return model;
}

void Model::Touch(absl::Time now) {
  last_used_.store(absl::ToUnixSeconds(now), std::memory_order_relaxed);
}

int64_t Model::quantizer_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int64_t>(quantizers_.size());
}

int64_t Model::charged_bytes() const {
  absl::ReaderMutexLock lock(&mu_);
  int64_t bytes = own_charge_.bytes() + onnx_charge_.bytes() + table_charge_.bytes() +
                  sessions_.charged_bytes();
  for (const auto& [name, state] : quantizers_) bytes += state->charged_bytes();
  return bytes;
}

Model::Model(ModelConfig config)
    : name_(std::move(config.name)),
      layout_(config.histogram_layout.value_or(kernels::HistogramLayout::kMergeable)),
      default_input_(std::move(config.default_input)),
      default_weight_(std::move(config.default_weight)),
      backend_(std::move(config.backend)),
      limits_(config.limits),
      sessions_(limits_.state_budget),
      onnx_charge_(limits_.state_budget),
      table_charge_(limits_.state_budget),
      last_used_(absl::ToUnixSeconds(absl::Now())),
      version_(NextVersion()) {}

void Model::Changed() { version_.store(NextVersion(), std::memory_order_release); }

std::shared_ptr<QuantizerState> Model::FindLocked(absl::string_view name) const {
  const auto it = quantizers_.find(name);
  return it == quantizers_.end() ? nullptr : it->second;
}

absl::StatusOr<BatchStats> Model::Record(absl::string_view quantizer,
                                         std::span<const int64_t> shape,
                                         std::span<const float> values, int64_t bytes) {
  QCAL_ASSIGN_OR_RETURN(
      std::optional<BatchStats> applied,
      ApplyTo(
          quantizer, [&](QuantizerState& state) { return state.Apply(values, shape, bytes); },
          nullptr));
  return *applied;
}

absl::StatusOr<BatchStats> Model::RecordPartial(absl::string_view quantizer,
                                                const PartialState& partial, int64_t bytes) {
  QCAL_ASSIGN_OR_RETURN(
      std::optional<BatchStats> applied,
      ApplyTo(
          quantizer, [&](QuantizerState& state) { return state.ApplyPartial(partial, bytes); },
          nullptr));
  return *applied;
}

absl::StatusOr<std::optional<BatchStats>> Model::RecordSequenced(absl::string_view quantizer,
                                                                 std::span<const int64_t> shape,
                                                                 std::span<const float> values,
                                                                 int64_t bytes,
                                                                 const SequencedBatch& sequenced) {
  return ApplyTo(
      quantizer, [&](QuantizerState& state) { return state.Apply(values, shape, bytes); },
      &sequenced);
}

absl::StatusOr<std::optional<BatchStats>> Model::RecordPartialSequenced(
    absl::string_view quantizer, const PartialState& partial, int64_t bytes,
    const SequencedBatch& sequenced) {
  return ApplyTo(
      quantizer, [&](QuantizerState& state) { return state.ApplyPartial(partial, bytes); },
      &sequenced);
}

SessionSequences Model::Sequences(absl::string_view session_id) const {
  return sessions_.Get(session_id);
}

void Model::MarkDurable(const std::map<std::string, int64_t>& sessions) {
  sessions_.MarkDurable(sessions);
}

absl::StatusOr<std::optional<BatchStats>> Model::ApplyTo(
    absl::string_view quantizer,
    const std::function<absl::StatusOr<BatchStats>(QuantizerState&)>& apply,
    const SequencedBatch* sequenced) {
  const std::string where = absl::StrCat("model '", name_, "'");
  // Checks the sequence, applies, advances it; called with mu_ held (shared or exclusive), so a
  // session is added (and charged) with its first batch or not at all.
  auto apply_in_session = [&](QuantizerState& state) -> absl::StatusOr<std::optional<BatchStats>> {
    if (sequenced == nullptr) {
      absl::StatusOr<BatchStats> applied = apply(state);
      if (!applied.ok()) return Annotate(applied.status(), where);
      Changed();
      return *applied;
    }
    QCAL_ASSIGN_OR_RETURN(std::shared_ptr<SessionTable::Session> session,
                          sessions_.Touch(sequenced->session_id, where));
    absl::MutexLock hold(&session->mu);
    QCAL_ASSIGN_OR_RETURN(const bool next, SessionTable::Check(*session, sequenced->session_id,
                                                               sequenced->sequence, where));
    if (!next) return std::nullopt;
    const bool first = session->applied.load() == 0;
    absl::StatusOr<BatchStats> applied = apply(state);
    if (!applied.ok()) {
      sessions_.Forget(sequenced->session_id, session);  // a new session leaves no trace
      return Annotate(applied.status(), where);
    }
    session->applied.store(sequenced->sequence);
    if (first) sessions_.Trim();
    Changed();
    return *applied;
  };
  {
    absl::ReaderMutexLock lock(&mu_);
    if (std::shared_ptr<QuantizerState> state = FindLocked(quantizer)) {
      return apply_in_session(*state);
    }
  }
  absl::MutexLock lock(&mu_);
  std::shared_ptr<QuantizerState> state = FindLocked(quantizer);  // another stream may have won
  const bool is_new = state == nullptr;
  if (is_new) {
    QCAL_RETURN_IF_ERROR(CheckName(absl::StrCat(where, ": quantizer name"), quantizer));
    QCAL_RETURN_IF_ERROR(CheckQuantizerCount(
        static_cast<int64_t>(quantizers_.size()) + 1, limits_,
        absl::StrCat(where, " with quantizer '", ShortForMessage(quantizer), "'")));
    QuantizerSpec spec = IsWeightQuantizer(quantizer) ? default_weight_ : default_input_;
    spec.name = std::string(quantizer);
    QCAL_ASSIGN_OR_RETURN(
        state, QuantizerState::Create(std::move(spec), /*declared=*/false, *backend_, limits_));
  }
  QCAL_ASSIGN_OR_RETURN(std::optional<BatchStats> applied, apply_in_session(*state));
  // A duplicate creates nothing either.
  if (is_new && applied.has_value()) quantizers_.emplace(std::string(quantizer), std::move(state));
  return applied;
}

absl::Status Model::CheckBatchShape(absl::string_view quantizer,
                                    std::span<const int64_t> shape) const {
  const std::string where = absl::StrCat("model '", name_, "'");
  std::shared_ptr<QuantizerState> state;
  {
    absl::ReaderMutexLock lock(&mu_);
    state = FindLocked(quantizer);
  }
  if (state != nullptr) return Annotate(state->CheckShape(shape), where);
  QCAL_RETURN_IF_ERROR(CheckName(absl::StrCat(where, ": quantizer name"), quantizer));
  QuantizerSpec spec = IsWeightQuantizer(quantizer) ? default_weight_ : default_input_;
  spec.name = std::string(quantizer);
  return Annotate(server::CheckBatchShape(spec, limits_.max_channels, /*channels=*/0, shape),
                  where);
}

ModelInfo Model::Info() const {
  ModelInfo info;
  OnnxKeys keys;
  {
    absl::ReaderMutexLock lock(&mu_);
    info = {.name = name_,
            .histogram_layout = layout_,
            .default_input = default_input_,
            .default_weight = default_weight_,
            .quantizers = {},
            .has_onnx = onnx_ != nullptr,
            .amax_method = table_.has_value() ? table_->method : "",
            .onnx_bindings = {}};
    for (const auto& [name, state] : quantizers_) {
      const QuantizerState::Sizes sizes = state->sizes();
      info.quantizers.push_back({.spec = state->spec(),
                                 .stats = state->stats(),
                                 .bins = sizes.bins,
                                 .amax_size = sizes.amax_size});
    }
    keys = OnnxKeysLocked();
  }
  // Outside the lock: the stored ONNX model is immutable, and binding walks its graph.
  if (keys.onnx != nullptr) {
    absl::StatusOr<std::map<std::string, QuantizerBinding>> bindings =
        BindQuantizers(*keys.onnx, keys.names, keys.tensor_map);
    if (bindings.ok()) {
      info.onnx_bindings = TensorNames(*bindings);
    } else {
      spdlog::debug("model '{}': no ONNX bindings for GetModel: {}", name_,
                    bindings.status().ToString());
    }
  }
  return info;
}

std::map<std::string, QuantizerSpec> Model::DeclaredSpecs() const {
  absl::ReaderMutexLock lock(&mu_);
  std::map<std::string, QuantizerSpec> out;
  for (const auto& [name, state] : quantizers_) {
    if (state->declared()) out.emplace(name, state->spec());
  }
  return out;
}

std::optional<std::string> Model::ConfigDifference(const Model& other) const {
  return PartsDifference({.layout = layout_,
                          .default_input = default_input_,
                          .default_weight = default_weight_,
                          .declared = DeclaredSpecs()},
                         {.layout = other.layout_,
                          .default_input = other.default_input_,
                          .default_weight = other.default_weight_,
                          .declared = other.DeclaredSpecs()},
                         absl::StrCat("model '", name_, "' exists"), "the request");
}

void Model::Reset() {
  absl::MutexLock lock(&mu_);
  std::erase_if(quantizers_, [](const auto& entry) { return !entry.second->declared(); });
  for (auto& [name, state] : quantizers_) state->Reset();
  table_.reset();
  table_charge_.Settle(0);
  ++generation_;
  Changed();
}

absl::StatusOr<AmaxTableForms> Model::ComputeAmax(const AmaxRequest& request, TableForms forms) {
  uint64_t generation = 0;
  TablePlan plan;
  OnnxKeys keys;
  {
    absl::ReaderMutexLock lock(&mu_);
    QCAL_ASSIGN_OR_RETURN(plan, PlanTableLocked(request));
    generation = generation_;
    keys = OnnxKeysLocked();
  }
  StateBudget::Charge copies(limits_.state_budget);
  QCAL_RETURN_IF_ERROR(
      copies.Resize(SearchCopyBytes(plan), absl::StrCat("model '", name_,
                                                        "': ComputeAmax's copies of the states "
                                                        "it searches")));
  QCAL_ASSIGN_OR_RETURN(AmaxTable table, RunPlan(plan, request.cancelled));
  // The forms come from this call's table: another ComputeAmax may store its own meanwhile.
  QCAL_ASSIGN_OR_RETURN(AmaxTableForms out, FormsOf(table, keys, forms));
  QCAL_RETURN_IF_ERROR(StoreTable(table, generation));
  return out;
}

absl::Status Model::StoreTable(const AmaxTable& table, uint64_t generation) {
  absl::MutexLock lock(&mu_);
  // A Reset since the computation dropped the data the table came from.
  if (generation != generation_) return absl::OkStatus();
  QCAL_RETURN_IF_ERROR(table_charge_.Resize(
      AmaxTableBytes(table), absl::StrCat("model '", name_, "': the amax table to store")));
  table_ = table;
  Changed();
  return absl::OkStatus();
}

absl::StatusOr<Model::TablePlan> Model::PlanTableLocked(const AmaxRequest& request) const {
  const std::string where = absl::StrCat("model '", name_, "'");
  QCAL_ASSIGN_OR_RETURN(
      MethodParams params,
      NormalizeMethodParams(request.params, absl::StrCat(where, ", ComputeAmax")));
  std::map<std::string, MethodParams> overrides;
  for (const auto& [quantizer, override_params] : request.overrides) {
    QCAL_RETURN_IF_ERROR(
        CheckName(absl::StrCat(where, ": quantizer name of an override"), quantizer));
    if (FindLocked(quantizer) == nullptr) {
      return absl::NotFoundError(absl::StrCat(where, ": an override names quantizer '", quantizer,
                                              "', which the model does not have"));
    }
    QCAL_ASSIGN_OR_RETURN(
        overrides[quantizer],
        NormalizeMethodParams(override_params,
                              absl::StrCat(where, ", override for quantizer '", quantizer, "'")));
  }

  TablePlan plan{.method = params.method, .quantizers = {}, .params = {}};
  for (const auto& [name, state] : quantizers_) {
    if (state->stats().batches == 0) continue;
    const auto override_it = overrides.find(name);
    plan.quantizers.push_back(state);
    plan.params.push_back(override_it == overrides.end() ? params : override_it->second);
  }
  if (plan.quantizers.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, " has no recorded data yet; Record batches before ComputeAmax"));
  }
  return plan;
}

int64_t Model::SearchCopyBytes(const TablePlan& plan) {
  std::vector<int64_t> sizes;
  for (const std::shared_ptr<QuantizerState>& state : plan.quantizers) {
    sizes.push_back(state->charged_bytes());
  }
  const size_t in_flight = std::min(sizes.size(), static_cast<size_t>(kernels::MaxParallelism()));
  std::partial_sort(sizes.begin(), sizes.begin() + in_flight, sizes.end(), std::greater<>());
  int64_t bytes = 0;
  for (size_t i = 0; i < in_flight; ++i) bytes += sizes[i];
  return bytes;
}

absl::StatusOr<AmaxTable> Model::RunPlan(const TablePlan& plan,
                                         const std::function<bool()>& cancelled) const {
  const std::function<bool()>* poll = cancelled ? &cancelled : nullptr;
  const int64_t n = static_cast<int64_t>(plan.quantizers.size());
  std::vector<absl::StatusOr<QuantizerAmax>> entries(n, absl::UnknownError("not computed"));
  // One search per quantizer, claimed by the pool's threads as they finish (a model's quantizers
  // differ a lot in cost); each search may itself spread over the cores.
  kernels::ParallelFor(n, kernels::BalancedChunksFor(n, /*grain=*/1),
                       [&](int, int64_t begin, int64_t end) {
                         for (int64_t i = begin; i < end; ++i) {
                           if (poll != nullptr && (*poll)()) {
                             entries[i] = absl::CancelledError("ComputeAmax cancelled");
                             continue;
                           }
                           entries[i] = plan.quantizers[i]->ComputeAmax(plan.params[i], poll);
                         }
                       });
  const std::string where = absl::StrCat("model '", name_, "'");
  AmaxTable table{.model = name_, .method = plan.method, .quantizers = {}};
  for (int64_t i = 0; i < n; ++i) {
    if (!entries[i].ok()) return Annotate(entries[i].status(), where);
    table.quantizers.emplace(plan.quantizers[i]->spec().name, *std::move(entries[i]));
  }
  return table;
}

Model::OnnxKeys Model::OnnxKeysLocked() const {
  std::set<std::string> names;
  for (const auto& [name, state] : quantizers_) names.insert(name);
  for (const auto& [name, tensor] : tensor_map_) names.insert(name);
  return {.onnx = onnx_, .tensor_map = tensor_map_, .names = {names.begin(), names.end()}};
}

absl::StatusOr<AmaxTableForms> Model::FormsOf(AmaxTable table, const OnnxKeys& keys,
                                              TableForms forms) const {
  const std::string where = absl::StrCat("model '", name_, "'");
  AmaxTableForms out{.included = forms, .table = {}, .json = {}, .trt_cache = {}, .warnings = {}};
  QCAL_ASSIGN_OR_RETURN(const int64_t bound, ResponseBound(table, forms, limits_, where));
  if (!forms.trt_cache) {
    if (forms.json) out.json = AmaxTableToJson(table);
    out.table = std::move(table);
    return out;
  }
  std::map<std::string, std::vector<std::string>> tensor_quantizers;
  if (keys.onnx != nullptr) {
    absl::StatusOr<std::map<std::string, QuantizerBinding>> bindings =
        BindQuantizers(*keys.onnx, keys.names, keys.tensor_map);
    if (!bindings.ok()) return Annotate(bindings.status(), where);
    tensor_quantizers = ActivationTensorQuantizers(*bindings);
  }
  absl::StatusOr<TrtCache> cache = TrtCacheText(table, tensor_quantizers);
  if (!cache.ok()) return Annotate(cache.status(), where);
  int64_t cache_bytes = static_cast<int64_t>(cache->text.size());
  for (const std::string& warning : cache->warnings) cache_bytes += warning.size() + 8;
  if (bound + cache_bytes > limits_.max_response_bytes) {
    return ResponseTooLarge(bound + cache_bytes, limits_, where);
  }
  for (const std::string& warning : cache->warnings) spdlog::warn("{}: {}", where, warning);
  out.trt_cache = std::move(cache->text);
  out.warnings = std::move(cache->warnings);
  if (forms.json) out.json = AmaxTableToJson(table);
  out.table = std::move(table);
  return out;
}

absl::StatusOr<AmaxTableForms> Model::GetAmaxTable(TableForms forms) const {
  AmaxTable table;
  OnnxKeys keys;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!table_.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("model '", name_, "' has no amax table; call ComputeAmax first"));
    }
    table = *table_;
    keys = OnnxKeysLocked();
  }
  return FormsOf(std::move(table), keys, forms);
}

absl::StatusOr<std::shared_ptr<QuantizerState>> Model::FindQuantizer(absl::string_view name) const {
  std::shared_ptr<QuantizerState> state;
  {
    absl::ReaderMutexLock lock(&mu_);
    state = FindLocked(name);
  }
  if (state == nullptr) {
    QCAL_RETURN_IF_ERROR(CheckName(absl::StrCat("model '", name_, "': quantizer name"), name));
    return absl::NotFoundError(absl::StrCat("model '", name_, "' has no quantizer '", name, "'"));
  }
  return state;
}

absl::StatusOr<HistogramSnapshot> Model::GetHistogram(absl::string_view quantizer) const {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<QuantizerState> state, FindQuantizer(quantizer));
  absl::StatusOr<HistogramSnapshot> histogram = state->Histogram();
  if (!histogram.ok()) return Annotate(histogram.status(), absl::StrCat("model '", name_, "'"));
  return histogram;
}

absl::StatusOr<QuantizerAmax> Model::QuantizerAmaxOf(absl::string_view quantizer,
                                                     const MethodParams& params,
                                                     const std::function<bool()>* cancelled) const {
  const std::string where = absl::StrCat("model '", name_, "', quantizer '", quantizer, "'");
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<QuantizerState> state, FindQuantizer(quantizer));
  QCAL_ASSIGN_OR_RETURN(MethodParams normalized, NormalizeMethodParams(params, where));
  StateBudget::Charge copy(limits_.state_budget);
  QCAL_RETURN_IF_ERROR(
      copy.Resize(state->charged_bytes(), absl::StrCat(where, ": the copy of its state searched")));
  absl::StatusOr<QuantizerAmax> amax = state->ComputeAmax(normalized, cancelled);
  if (!amax.ok()) return Annotate(amax.status(), absl::StrCat("model '", name_, "'"));
  return amax;
}

absl::StatusOr<Model::ParsedOnnx> Model::ParseAndBind(
    const std::string& bytes, const std::map<std::string, std::string>& tensor_map,
    const std::string& where) const {
  QCAL_RETURN_IF_ERROR(CheckTensorMap(tensor_map, where));
  absl::StatusOr<onnx::ModelProto> parsed = ParseOnnxModel(bytes);
  if (!parsed.ok()) return Annotate(parsed.status(), where);
  ParsedOnnx out{.onnx = std::make_shared<const onnx::ModelProto>(std::move(*parsed)),
                 .bindings = {}};
  std::set<std::string> names;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, state] : quantizers_) names.insert(name);
  }
  for (const auto& [name, tensor] : tensor_map) names.insert(name);
  absl::StatusOr<std::map<std::string, QuantizerBinding>> bindings =
      BindQuantizers(*out.onnx, {names.begin(), names.end()}, tensor_map);
  if (!bindings.ok()) return Annotate(bindings.status(), where);
  out.bindings = std::move(*bindings);
  return out;
}

absl::StatusOr<OnnxUploadResult> Model::UploadOnnx(const std::string& bytes,
                                                   std::map<std::string, std::string> tensor_map) {
  QCAL_ASSIGN_OR_RETURN(
      ParsedOnnx parsed,
      ParseAndBind(bytes, tensor_map, absl::StrCat("model '", name_, "', UploadOnnx")));
  OnnxUploadResult result{.bytes = static_cast<int64_t>(bytes.size()),
                          .opset = DefaultOpset(*parsed.onnx),
                          .bindings = TensorNames(parsed.bindings)};
  const int64_t onnx_bytes = OnnxBytes(*parsed.onnx);
  absl::MutexLock lock(&mu_);
  QCAL_RETURN_IF_ERROR(onnx_charge_.Resize(
      onnx_bytes, absl::StrCat("model '", name_, "', UploadOnnx: the ONNX model")));
  onnx_ = std::move(parsed.onnx);
  tensor_map_ = std::move(tensor_map);
  Changed();
  return result;
}

absl::StatusOr<OnnxExportResult> Model::ExportOnnx(const std::optional<AmaxRequest>& compute,
                                                   QdqTarget target,
                                                   const std::optional<SentOnnx>& sent,
                                                   Fp8Ops fp8_ops) {
  const std::string where = absl::StrCat("model '", name_, "', ExportOnnx");
  std::shared_ptr<const onnx::ModelProto> onnx;
  std::map<std::string, std::string> tensor_map;
  if (sent.has_value()) {
    QCAL_ASSIGN_OR_RETURN(ParsedOnnx parsed, ParseAndBind(sent->bytes, sent->tensor_map, where));
    onnx = std::move(parsed.onnx);
    tensor_map = sent->tensor_map;
  }
  std::optional<AmaxTable> table;
  TablePlan plan;
  uint64_t generation = 0;
  OnnxExportResult out;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (onnx == nullptr) {
      if (onnx_ == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            where,
            ": no ONNX model was uploaded; call UploadOnnx first or send the ONNX model "
            "with the export"));
      }
      onnx = onnx_;
      tensor_map = tensor_map_;
    }
    generation = generation_;
    out.computed = compute.has_value();
    if (compute.has_value()) {
      QCAL_ASSIGN_OR_RETURN(plan, PlanTableLocked(*compute));
    } else if (table_.has_value()) {
      table = table_;
    } else {
      return absl::FailedPreconditionError(absl::StrCat(
          where,
          ": no amax table; call ComputeAmax first or set ExportOnnxRequest.compute (e.g. `qcal "
          "export --method M`)"));
    }
  }
  // The searches' copies (as ComputeAmax's), then the QDQ graph built from the float one and its
  // serialization: charged for the call, so that concurrent exports cannot hold copies past
  // --max-state-bytes.
  StateBudget::Charge copies(limits_.state_budget);
  QCAL_RETURN_IF_ERROR(
      copies.Resize((compute.has_value() ? SearchCopyBytes(plan) : 0) + 2 * OnnxBytes(*onnx),
                    absl::StrCat(where, ": the copies the export works on")));
  if (compute.has_value()) {
    QCAL_ASSIGN_OR_RETURN(table, RunPlan(plan, compute->cancelled));
  }
  const QdqOptions options{.target = target,
                           .default_weight_num_bits = default_weight_.num_bits,
                           .default_weight_unsigned = default_weight_.is_unsigned,
                           .explicit_pairs = tensor_map,
                           .fp8_ops = fp8_ops};
  absl::StatusOr<QdqResult> exported = ExportQdq(*onnx, *table, options);
  if (!exported.ok()) return Annotate(exported.status(), where);

  out.amax_method = table->method;
  if (!exported->model.SerializeToString(&out.bytes)) {
    return absl::InternalError(absl::StrCat(where, ": could not serialize the QDQ model"));
  }
  out.warnings = std::move(exported->warnings);
  out.explain = std::move(exported->explain);
  for (const std::string& warning : out.warnings) spdlog::warn("{}: {}", where, warning);
  // Stored only now, and together, so a refused export leaves the previous ONNX, tensor map and
  // table in place.
  const int64_t onnx_bytes = sent.has_value() ? OnnxBytes(*onnx) : 0;
  absl::MutexLock lock(&mu_);
  // A Reset since the computation dropped the data the table came from.
  const bool store_table = compute.has_value() && generation == generation_;
  const int64_t onnx_had = onnx_charge_.bytes();
  if (sent.has_value()) {
    QCAL_RETURN_IF_ERROR(
        onnx_charge_.Resize(onnx_bytes, absl::StrCat(where, ": the ONNX model sent")));
  }
  if (store_table) {
    if (absl::Status charged =
            table_charge_.Resize(AmaxTableBytes(*table), absl::StrCat(where, ": the amax table"));
        !charged.ok()) {
      onnx_charge_.Settle(onnx_had);
      return charged;
    }
  }
  if (sent.has_value()) {
    onnx_ = std::move(onnx);
    tensor_map_ = std::move(tensor_map);
  }
  if (store_table) table_ = std::move(table);
  if (sent.has_value() || compute.has_value()) Changed();
  return out;
}

absl::StatusOr<ModelSnapshot> Model::Snapshot(uint64_t* version) const {
  ModelSnapshot out{.model = name_,
                    .layout = layout_,
                    .default_input = default_input_,
                    .default_weight = default_weight_};
  std::shared_ptr<const onnx::ModelProto> onnx;
  {
    // Exclusive: Record holds the lock shared while it applies a batch, so every quantizer is
    // read between batches, and the snapshot is one moment of the whole model.
    absl::MutexLock lock(&mu_);
    for (const auto& [name, state] : quantizers_) {
      QCAL_ASSIGN_OR_RETURN(QuantizerSnapshot quantizer, state->Export());
      out.quantizers.push_back(std::move(quantizer));
    }
    onnx = onnx_;
    out.tensor_map = tensor_map_;
    out.amax_table = table_;
    // Sequences advance only under mu_ (shared), so these match the quantizers' batches.
    out.sessions = sessions_.Applied();
    if (version != nullptr) *version = this->version();
  }
  out.last_used_unix_seconds = last_used_unix_seconds();
  // Outside the lock: the stored ONNX model is immutable, and may be large.
  if (onnx != nullptr && !onnx->SerializeToString(&out.onnx)) {
    return absl::InternalError(
        absl::StrCat("model '", name_, "': could not serialize the stored ONNX model"));
  }
  return out;
}

namespace {

// The configuration a snapshot describes, under `config`'s name, backend and limits.
ModelConfig SnapshotConfig(ModelConfig config, const ModelSnapshot& snapshot) {
  config.histogram_layout = snapshot.layout;
  config.default_input = snapshot.default_input;
  config.default_weight = snapshot.default_weight;
  config.quantizers.clear();
  for (const QuantizerSnapshot& quantizer : snapshot.quantizers) {
    if (quantizer.declared) config.quantizers.push_back(quantizer.spec);
  }
  return config;
}

}  // namespace

absl::StatusOr<std::shared_ptr<Model>> Model::FromSnapshot(ModelConfig config,
                                                           const ModelSnapshot& snapshot) {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model,
                        Create(SnapshotConfig(std::move(config), snapshot)));
  const std::string where = absl::StrCat("model '", model->name_, "'");
  QCAL_RETURN_IF_ERROR(CheckQuantizerCount(static_cast<int64_t>(snapshot.quantizers.size()),
                                           model->limits_, absl::StrCat(where, " from the state")));
  // The declared quantizers Create made are replaced below: they hold no charge meanwhile.
  {
    absl::MutexLock lock(&model->mu_);
    model->quantizers_.clear();
  }
  std::map<std::string, std::shared_ptr<QuantizerState>, std::less<>> quantizers;
  for (const QuantizerSnapshot& quantizer : snapshot.quantizers) {
    QCAL_RETURN_IF_ERROR(
        CheckName(absl::StrCat(where, ": quantizer name in the state"), quantizer.spec.name));
    QuantizerSnapshot restored = quantizer;
    restored.spec.layout = model->layout_;
    absl::StatusOr<std::unique_ptr<QuantizerState>> state =
        QuantizerState::Restore(restored, *model->backend_, model->limits_);
    if (!state.ok()) return Annotate(state.status(), where);
    if (!quantizers.emplace(quantizer.spec.name, *std::move(state)).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": quantizer '", quantizer.spec.name,
                                                     "' appears twice in the state"));
    }
  }
  if (snapshot.amax_table.has_value()) {
    QCAL_RETURN_IF_ERROR(CheckAmaxTable(*snapshot.amax_table, where));
  }
  for (const auto& [session_id, sequence] : snapshot.sessions) {
    QCAL_RETURN_IF_ERROR(
        CheckSessionId(session_id, absl::StrCat(where, ": a session in the state")));
    if (sequence < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": session ", SessionForMessage(session_id),
                       " in the state has sequence ", sequence, "; sequences are >= 1"));
    }
  }
  {
    absl::MutexLock lock(&model->mu_);
    model->quantizers_ = std::move(quantizers);
    QCAL_RETURN_IF_ERROR(
        model->sessions_.Restore(snapshot.sessions, absl::StrCat(where, " from the state")));
  }
  if (!snapshot.onnx.empty()) {
    // Checked as UploadOnnx checks it, against the quantizers just restored.
    QCAL_ASSIGN_OR_RETURN(ParsedOnnx parsed,
                          model->ParseAndBind(snapshot.onnx, snapshot.tensor_map,
                                              absl::StrCat(where, ", the state's ONNX model")));
    const int64_t onnx_bytes = OnnxBytes(*parsed.onnx);
    absl::MutexLock lock(&model->mu_);
    QCAL_RETURN_IF_ERROR(
        model->onnx_charge_.Resize(onnx_bytes, absl::StrCat(where, ": the state's ONNX model")));
    model->onnx_ = std::move(parsed.onnx);
    model->tensor_map_ = snapshot.tensor_map;
  } else if (!snapshot.tensor_map.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": the state has a tensor_map but no ONNX model"));
  }
  absl::MutexLock lock(&model->mu_);
  if (snapshot.amax_table.has_value()) {
    QCAL_RETURN_IF_ERROR(model->table_charge_.Resize(
        AmaxTableBytes(*snapshot.amax_table), absl::StrCat(where, ": the state's amax table")));
    model->table_ = snapshot.amax_table;
    model->table_->model = model->name_;
  }
  if (snapshot.last_used_unix_seconds > 0) {
    model->last_used_.store(snapshot.last_used_unix_seconds, std::memory_order_relaxed);
  }
  return model;
}

absl::Status Model::Merge(const ModelSnapshot& snapshot) {
  const std::string where = absl::StrCat("model '", name_, "', LoadState merge");
  // The snapshot's own configuration is checked as FromSnapshot checks it (names, specs,
  // limits), on a model that is thrown away.
  QCAL_ASSIGN_OR_RETURN(
      std::shared_ptr<Model> theirs,
      Create(SnapshotConfig({.name = name_, .backend = backend_, .limits = limits_}, snapshot)));
  if (std::optional<std::string> diff =
          PartsDifference({.layout = layout_,
                           .default_input = default_input_,
                           .default_weight = default_weight_,
                           .declared = DeclaredSpecs()},
                          {.layout = theirs->layout_,
                           .default_input = theirs->default_input_,
                           .default_weight = theirs->default_weight_,
                           .declared = theirs->DeclaredSpecs()},
                          absl::StrCat(where, ": the model exists"), "the state file")) {
    return absl::FailedPreconditionError(*diff);
  }
  if (snapshot.amax_table.has_value()) {
    QCAL_RETURN_IF_ERROR(CheckAmaxTable(*snapshot.amax_table, where));
  }
  // The copies the merge works on beside the model are charged until it returns (the merged
  // quantizer states hold their own charges as they are built), so that concurrent merges cannot
  // hold them past --max-state-bytes.
  StateBudget::Charge copies(limits_.state_budget);
  const std::string copies_what =
      absl::StrCat(where, ": the copies the merge works on beside the model");
  // The snapshot's ONNX model is checked whether or not it is taken: a merge takes a file whole.
  std::optional<ParsedOnnx> onnx;
  int64_t onnx_bytes = 0;
  if (!snapshot.onnx.empty()) {
    QCAL_ASSIGN_OR_RETURN(onnx, ParseAndBind(snapshot.onnx, snapshot.tensor_map,
                                             absl::StrCat(where, ", the state's ONNX model")));
    onnx_bytes = OnnxBytes(*onnx->onnx);
    QCAL_RETURN_IF_ERROR(copies.Resize(onnx_bytes, copies_what));
  } else if (!snapshot.tensor_map.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": the state has a tensor_map but no ONNX model"));
  }

  // Exclusive from reading the model's state to swapping the merged one in: no batch lands in
  // between (Record waits, then applies to the merged state).
  absl::MutexLock lock(&mu_);
  int64_t added = 0;
  for (const QuantizerSnapshot& quantizer : snapshot.quantizers) {
    if (FindLocked(quantizer.spec.name) == nullptr) ++added;
  }
  QCAL_RETURN_IF_ERROR(
      CheckQuantizerCount(static_cast<int64_t>(quantizers_.size()) + added, limits_, where));
  // One quantizer at a time: the snapshot's state copied and, when the model has the quantizer,
  // its export and the sum (at most both).
  int64_t largest = 0;
  for (const QuantizerSnapshot& quantizer : snapshot.quantizers) {
    const int64_t file_bytes = QuantizerSnapshotBytes(quantizer);
    const std::shared_ptr<QuantizerState> have = FindLocked(quantizer.spec.name);
    largest =
        std::max(largest, have == nullptr ? file_bytes : 2 * (file_bytes + have->charged_bytes()));
  }
  QCAL_RETURN_IF_ERROR(copies.Resize(onnx_bytes + largest, copies_what));
  std::map<std::string, std::shared_ptr<QuantizerState>, std::less<>> merged;
  for (const QuantizerSnapshot& quantizer : snapshot.quantizers) {
    const std::string& name = quantizer.spec.name;
    QCAL_RETURN_IF_ERROR(CheckName(absl::StrCat(where, ": quantizer name in the state"), name));
    if (merged.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": quantizer '", name, "' appears twice in the state"));
    }
    QuantizerSnapshot loaded = quantizer;
    loaded.spec.layout = layout_;
    // The file's state alone must be consistent, whatever it is added to.
    absl::StatusOr<std::unique_ptr<QuantizerState>> alone =
        QuantizerState::Restore(loaded, *backend_, limits_);
    if (!alone.ok()) return Annotate(alone.status(), where);
    const std::shared_ptr<QuantizerState> have = FindLocked(name);
    if (have == nullptr) {
      merged.emplace(name, *std::move(alone));
      continue;
    }
    if (std::optional<std::string> diff = SpecDifference(have->spec(), loaded.spec)) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": the model has quantizer '", name, "' with ", *diff, " as the state file has"));
    }
    QCAL_ASSIGN_OR_RETURN(QuantizerSnapshot mine, have->Export());
    absl::StatusOr<QuantizerSnapshot> sum = MergeQuantizerSnapshots(mine, loaded);
    if (!sum.ok()) return Annotate(sum.status(), where);
    absl::StatusOr<std::unique_ptr<QuantizerState>> state =
        QuantizerState::Restore(*sum, *backend_, limits_);
    if (!state.ok()) return Annotate(state.status(), where);
    merged.emplace(name, *std::move(state));
  }
  const bool take_onnx = onnx_ == nullptr && onnx.has_value();
  if (take_onnx) {
    copies.Settle(copies.bytes() - onnx_bytes);  // the parsed model moves to the model's charge
    QCAL_RETURN_IF_ERROR(
        onnx_charge_.Resize(onnx_bytes, absl::StrCat(where, ": the state's ONNX model")));
  }
  // Nothing was changed above; from here on nothing fails.
  for (auto& [name, state] : merged) quantizers_[name] = std::move(state);
  if (take_onnx) {
    onnx_ = std::move(onnx->onnx);
    tensor_map_ = snapshot.tensor_map;
  }
  // The stored table no longer describes the state; a computation running now is not stored.
  table_.reset();
  table_charge_.Settle(0);
  ++generation_;
  Changed();
  return absl::OkStatus();
}

}  // namespace qcal::server
