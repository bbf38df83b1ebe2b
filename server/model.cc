#include "server/model.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/amax_table_json.h"
#include "server/cpu_calibrator.h"
#include "server/onnx/onnx_model.h"
#include "server/onnx/quantizer_binding.h"
#include "server/status_util.h"
#include "server/trt_cache.h"
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

}  // namespace

absl::StatusOr<std::shared_ptr<Model>> Model::Create(ModelConfig config) {
  if (config.name.empty()) return absl::InvalidArgumentError("a model needs a name");
  const std::string where = absl::StrCat("model '", config.name, "'");
  if (config.backend == nullptr) config.backend = CpuBackend();
  config.default_input.name.clear();
  config.default_weight.name.clear();
  QCAL_RETURN_IF_ERROR(
      Annotate(ValidateSpec(config.default_input), absl::StrCat(where, ", default_input")));
  QCAL_RETURN_IF_ERROR(
      Annotate(ValidateSpec(config.default_weight), absl::StrCat(where, ", default_weight")));

  std::map<std::string, std::shared_ptr<QuantizerState>, std::less<>> declared;
  for (QuantizerSpec& spec : config.quantizers) {
    if (spec.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": a declared quantizer has no name"));
    }
    if (declared.contains(spec.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": quantizer '", spec.name, "' is declared twice"));
    }
    const std::string name = spec.name;
    absl::StatusOr<std::unique_ptr<QuantizerState>> state =
        QuantizerState::Create(std::move(spec), /*declared=*/true, *config.backend);
    if (!state.ok()) return Annotate(state.status(), where);
    declared.emplace(name, std::move(*state));
  }

  std::shared_ptr<Model> model(new Model(std::move(config)));
  absl::MutexLock lock(&model->mu_);
  model->quantizers_ = std::move(declared);
  return model;
}

Model::Model(ModelConfig config)
    : name_(std::move(config.name)),
      default_input_(std::move(config.default_input)),
      default_weight_(std::move(config.default_weight)),
      backend_(std::move(config.backend)) {}

std::shared_ptr<QuantizerState> Model::FindLocked(absl::string_view name) const {
  const auto it = quantizers_.find(name);
  return it == quantizers_.end() ? nullptr : it->second;
}

absl::StatusOr<BatchStats> Model::Record(absl::string_view quantizer,
                                         std::span<const int64_t> shape,
                                         std::span<const float> values, int64_t bytes) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (std::shared_ptr<QuantizerState> state = FindLocked(quantizer)) {
      absl::StatusOr<BatchStats> applied = state->Apply(values, shape, bytes);
      if (!applied.ok()) return Annotate(applied.status(), absl::StrCat("model '", name_, "'"));
      return applied;
    }
  }
  return RecordNew(quantizer, shape, values, bytes);
}

absl::StatusOr<BatchStats> Model::RecordNew(absl::string_view quantizer,
                                            std::span<const int64_t> shape,
                                            std::span<const float> values, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<QuantizerState> state = FindLocked(quantizer);  // another stream may have won
  const bool is_new = state == nullptr;
  if (is_new) {
    QuantizerSpec spec = IsWeightQuantizer(quantizer) ? default_weight_ : default_input_;
    spec.name = std::string(quantizer);
    QCAL_ASSIGN_OR_RETURN(state,
                          QuantizerState::Create(std::move(spec), /*declared=*/false, *backend_));
  }
  absl::StatusOr<BatchStats> applied = state->Apply(values, shape, bytes);
  if (!applied.ok()) return Annotate(applied.status(), absl::StrCat("model '", name_, "'"));
  if (is_new) quantizers_.emplace(std::string(quantizer), std::move(state));
  return applied;
}

ModelInfo Model::Info() const {
  absl::ReaderMutexLock lock(&mu_);
  ModelInfo info{.name = name_,
                 .default_input = default_input_,
                 .default_weight = default_weight_,
                 .quantizers = {},
                 .has_onnx = onnx_ != nullptr,
                 .amax_method = table_.has_value() ? table_->method : ""};
  for (const auto& [name, state] : quantizers_) {
    info.quantizers.push_back({.spec = state->spec(), .stats = state->stats()});
  }
  return info;
}

void Model::Reset() {
  absl::MutexLock lock(&mu_);
  std::erase_if(quantizers_, [](const auto& entry) { return !entry.second->declared(); });
  for (auto& [name, state] : quantizers_) state->Reset();
  table_.reset();
  ++generation_;
}

absl::StatusOr<AmaxTable> Model::ComputeAmax(const AmaxRequest& request) {
  uint64_t generation = 0;
  absl::StatusOr<AmaxTable> table;
  {
    absl::ReaderMutexLock lock(&mu_);
    table = ComputeTableLocked(request);
    generation = generation_;
  }
  if (table.ok()) StoreTable(*table, generation);
  return table;
}

void Model::StoreTable(const AmaxTable& table, uint64_t generation) {
  absl::MutexLock lock(&mu_);
  // A Reset since the computation dropped the data the table came from.
  if (generation == generation_) table_ = table;
}

absl::StatusOr<AmaxTable> Model::ComputeTableLocked(const AmaxRequest& request) const {
  const std::string where = absl::StrCat("model '", name_, "'");
  QCAL_ASSIGN_OR_RETURN(
      MethodParams params,
      NormalizeMethodParams(request.params, absl::StrCat(where, ", ComputeAmax")));
  std::map<std::string, MethodParams> overrides;
  for (const auto& [quantizer, override_params] : request.overrides) {
    if (FindLocked(quantizer) == nullptr) {
      return absl::NotFoundError(absl::StrCat(where, ": an override names quantizer '", quantizer,
                                              "', which the model does not have"));
    }
    QCAL_ASSIGN_OR_RETURN(
        overrides[quantizer],
        NormalizeMethodParams(override_params,
                              absl::StrCat(where, ", override for quantizer '", quantizer, "'")));
  }

  AmaxTable table{.model = name_, .method = params.method, .quantizers = {}};
  for (const auto& [name, state] : quantizers_) {
    if (state->stats().batches == 0) continue;
    const auto override_it = overrides.find(name);
    const MethodParams& chosen = override_it == overrides.end() ? params : override_it->second;
    absl::StatusOr<QuantizerAmax> entry = state->ComputeAmax(chosen);
    if (!entry.ok()) return Annotate(entry.status(), where);
    table.quantizers.emplace(name, std::move(*entry));
  }
  if (table.quantizers.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, " has no recorded data yet; Record batches before ComputeAmax"));
  }
  return table;
}

std::vector<std::string> Model::BindableNamesLocked() const {
  std::set<std::string> names;
  for (const auto& [name, state] : quantizers_) names.insert(name);
  for (const auto& [name, tensor] : tensor_map_) names.insert(name);
  return {names.begin(), names.end()};
}

absl::StatusOr<AmaxTableForms> Model::GetAmaxTable() const {
  std::shared_ptr<const onnx::ModelProto> onnx;
  std::map<std::string, std::string> tensor_map;
  std::vector<std::string> names;
  AmaxTableForms out;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!table_.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("model '", name_, "' has no amax table; call ComputeAmax first"));
    }
    out.table = *table_;
    onnx = onnx_;
    tensor_map = tensor_map_;
    names = BindableNamesLocked();
  }
  std::map<std::string, std::vector<std::string>> tensor_quantizers;
  if (onnx != nullptr) {
    absl::StatusOr<std::map<std::string, QuantizerBinding>> bindings =
        BindQuantizers(*onnx, names, tensor_map);
    if (!bindings.ok()) return Annotate(bindings.status(), absl::StrCat("model '", name_, "'"));
    tensor_quantizers = ActivationTensorQuantizers(*bindings);
  }
  out.json = AmaxTableToJson(out.table);
  out.trt_cache = TrtCacheText(out.table, tensor_quantizers);
  return out;
}

absl::StatusOr<HistogramSnapshot> Model::GetHistogram(absl::string_view quantizer) const {
  std::shared_ptr<QuantizerState> state;
  {
    absl::ReaderMutexLock lock(&mu_);
    state = FindLocked(quantizer);
  }
  if (state == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("model '", name_, "' has no quantizer '", quantizer, "'"));
  }
  absl::StatusOr<HistogramSnapshot> histogram = state->Histogram();
  if (!histogram.ok()) return Annotate(histogram.status(), absl::StrCat("model '", name_, "'"));
  return histogram;
}

absl::StatusOr<OnnxUploadResult> Model::UploadOnnx(const std::string& bytes,
                                                   std::map<std::string, std::string> tensor_map) {
  const std::string where = absl::StrCat("model '", name_, "', UploadOnnx");
  absl::StatusOr<onnx::ModelProto> parsed = ParseOnnxModel(bytes);
  if (!parsed.ok()) return Annotate(parsed.status(), where);
  auto onnx = std::make_shared<const onnx::ModelProto>(std::move(*parsed));

  std::set<std::string> names;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, state] : quantizers_) names.insert(name);
  }
  for (const auto& [name, tensor] : tensor_map) names.insert(name);
  absl::StatusOr<std::map<std::string, QuantizerBinding>> bindings =
      BindQuantizers(*onnx, {names.begin(), names.end()}, tensor_map);
  if (!bindings.ok()) return Annotate(bindings.status(), where);

  OnnxUploadResult result{.bytes = static_cast<int64_t>(bytes.size()),
                          .opset = DefaultOpset(*onnx),
                          .bindings = TensorNames(*bindings)};
  absl::MutexLock lock(&mu_);
  onnx_ = std::move(onnx);
  tensor_map_ = std::move(tensor_map);
  return result;
}

absl::StatusOr<OnnxExportResult> Model::ExportOnnx(const std::optional<AmaxRequest>& compute,
                                                   QdqTarget target) {
  const std::string where = absl::StrCat("model '", name_, "', ExportOnnx");
  std::shared_ptr<const onnx::ModelProto> onnx;
  std::map<std::string, std::string> tensor_map;
  std::optional<AmaxTable> table;
  uint64_t generation = 0;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (onnx_ == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": no ONNX model was uploaded; call UploadOnnx first"));
    }
    onnx = onnx_;
    tensor_map = tensor_map_;
    generation = generation_;
    if (compute.has_value()) {
      QCAL_ASSIGN_OR_RETURN(table, ComputeTableLocked(*compute));
    } else if (table_.has_value()) {
      table = table_;
    } else {
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": no amax table; call ComputeAmax first or pass `compute` with a method"));
    }
  }
  const QdqOptions options{.target = target,
                           .default_weight_num_bits = default_weight_.num_bits,
                           .default_weight_unsigned = default_weight_.is_unsigned,
                           .explicit_pairs = std::move(tensor_map)};
  absl::StatusOr<QdqResult> exported = ExportQdq(*onnx, *table, options);
  if (!exported.ok()) return Annotate(exported.status(), where);

  OnnxExportResult out;
  if (!exported->model.SerializeToString(&out.bytes)) {
    return absl::InternalError(absl::StrCat(where, ": could not serialize the QDQ model"));
  }
  out.warnings = std::move(exported->warnings);
  for (const std::string& warning : out.warnings) spdlog::warn("{}: {}", where, warning);
  // Stored only now, so a refused export leaves the previous table in place.
  if (compute.has_value()) StoreTable(*table, generation);
  return out;
}

}  // namespace qcal::server
