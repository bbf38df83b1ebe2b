#include "server/rpc/proto_convert.h"

#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/base/names.h"
#include "server/base/status_util.h"
#include "server/onnx/fp8_qdq.h"

namespace qcal::server {

absl::StatusOr<kernels::DType> DTypeFromProto(int dtype, absl::string_view quantizer) {
  switch (dtype) {
    case v1::DTYPE_FLOAT32:
      return kernels::DType::kFloat32;
    case v1::DTYPE_FLOAT16:
      return kernels::DType::kFloat16;
    case v1::DTYPE_BFLOAT16:
      return kernels::DType::kBFloat16;
    case v1::DTYPE_FLOAT64:
      return kernels::DType::kFloat64;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("quantizer '", quantizer, "': unknown dtype ", dtype,
                       dtype == v1::DTYPE_UNSPECIFIED ? " (DTYPE_UNSPECIFIED)" : "",
                       "; expected float32, float16, bfloat16 or float64"));
  }
}

absl::StatusOr<ModelConfig> ModelConfigFromProto(const v1::CreateModelRequest& request) {
  ModelConfig config{.name = request.model(),
                     .default_input = DefaultInputSpec(),
                     .default_weight = DefaultWeightSpec(),
                     .quantizers = {}};
  if (request.has_default_input()) {
    QCAL_ASSIGN_OR_RETURN(config.default_input,
                          SpecFromProto(request.default_input(), DefaultInputSpec().calibrator));
  }
  if (request.has_default_weight()) {
    QCAL_ASSIGN_OR_RETURN(config.default_weight,
                          SpecFromProto(request.default_weight(), DefaultWeightSpec().calibrator));
  }
  for (const v1::QuantizerSpec& declared : request.quantizers()) {
    const QuantizerSpec& role =
        IsWeightQuantizer(declared.name()) ? config.default_weight : config.default_input;
    QCAL_ASSIGN_OR_RETURN(QuantizerSpec spec, SpecFromProto(declared, role.calibrator));
    config.quantizers.push_back(std::move(spec));
  }
  QCAL_ASSIGN_OR_RETURN(
      config.histogram_layout,
      HistogramLayoutFromProto(request.histogram_layout(),
                               absl::StrCat("model '", ShortForMessage(request.model()), "'")));
  return config;
}

absl::StatusOr<std::optional<kernels::HistogramLayout>> HistogramLayoutFromProto(
    int layout, absl::string_view where) {
  switch (layout) {
    case v1::HISTOGRAM_LAYOUT_UNSPECIFIED:
      return std::nullopt;
    case v1::HISTOGRAM_LAYOUT_REFERENCE:
      return kernels::HistogramLayout::kReference;
    case v1::HISTOGRAM_LAYOUT_MERGEABLE:
      return kernels::HistogramLayout::kMergeable;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": histogram_layout ", layout,
          " is no layout; expected HISTOGRAM_LAYOUT_REFERENCE (1) or HISTOGRAM_LAYOUT_MERGEABLE "
          "(2), or leave it unset for the server's default"));
  }
}

void ModelInfoToProto(const ModelInfo& info, v1::ModelInfo* proto) {
  proto->set_name(info.name);
  proto->set_histogram_layout(HistogramLayoutToProto(info.histogram_layout));
  SpecToProto(info.default_input, proto->mutable_default_input());
  SpecToProto(info.default_weight, proto->mutable_default_weight());
  for (const QuantizerInfo& quantizer : info.quantizers) {
    v1::QuantizerStats* stats = proto->add_quantizers();
    SpecToProto(quantizer.spec, stats->mutable_spec());
    stats->set_batches(quantizer.stats.batches);
    stats->set_elements(quantizer.stats.elements);
    stats->set_nonfinite(quantizer.stats.nonfinite);
    stats->set_bytes(quantizer.stats.bytes);
    stats->set_bins(quantizer.bins);
    stats->set_amax_size(quantizer.amax_size);
  }
  proto->set_has_onnx(info.has_onnx);
  proto->set_amax_method(info.amax_method);
  proto->mutable_onnx_bindings()->insert(info.onnx_bindings.begin(), info.onnx_bindings.end());
}

absl::StatusOr<PartialState> PartialStateFromProto(const v1::PartialState& proto,
                                                   absl::string_view model,
                                                   absl::string_view quantizer) {
  PartialState out{.batches = proto.batches(),
                   .elements = proto.elements(),
                   .nonfinite = proto.nonfinite(),
                   .state = {}};
  switch (proto.state_case()) {
    case v1::PartialState::kHistogram: {
      const v1::MergeableHistogram& in = proto.histogram();
      out.state = kernels::MergeableState{.exponent = in.exponent(),
                                          .counts = {in.counts().begin(), in.counts().end()},
                                          .abs_max = in.abs_max(),
                                          .zeros = in.zeros()};
      break;
    }
    case v1::PartialState::kMax: {
      MaxPartial max{.amax = {proto.max().amax().begin(), proto.max().amax().end()},
                     .axis = std::nullopt};
      if (proto.max().has_axis()) max.axis = proto.max().axis();
      out.state = std::move(max);
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", ShortForMessage(model), "': quantizer '", ShortForMessage(quantizer),
          "': partial state holds neither `histogram` nor `max`"));
  }
  return out;
}

absl::StatusOr<RecordChunk> RecordChunkFromProto(v1::RecordRequest& request) {
  RecordChunk chunk{.model = request.model(),
                    .quantizer = request.quantizer(),
                    .header = std::nullopt,
                    .data = std::move(*request.mutable_data()),
                    .session_id = request.session_id(),
                    .sequence = request.sequence()};
  if (request.has_header()) {
    const v1::TensorHeader& header = request.header();
    QCAL_ASSIGN_OR_RETURN(kernels::DType dtype,
                          DTypeFromProto(header.dtype(), request.quantizer()));
    chunk.header =
        BatchHeader{.dtype = dtype, .shape = {header.shape().begin(), header.shape().end()}};
  }
  if (request.has_partial()) {
    QCAL_ASSIGN_OR_RETURN(chunk.partial, PartialStateFromProto(request.partial(), request.model(),
                                                               request.quantizer()));
    chunk.partial_bytes = static_cast<int64_t>(request.partial().ByteSizeLong());
  }
  return chunk;
}

namespace {

MethodParams ParamsFromProto(const std::string& method, double percentile, int start_bin,
                             int stride) {
  return {.method = method, .percentile = percentile, .start_bin = start_bin, .stride = stride};
}

}  // namespace

void RecordResponseFromStats(const BatchStats& applied, v1::RecordResponse* proto) {
  proto->set_batches(applied.batches);
  proto->set_elements(applied.elements);
  proto->set_nonfinite(applied.nonfinite);
  proto->set_bytes(applied.bytes);
  proto->set_partials(applied.partials);
}

void RecordResponseFromResult(const RecordStreamResult& result, v1::RecordResponse* proto) {
  RecordResponseFromStats(result.applied, proto);
  proto->set_applied_sequence(result.applied_sequence);
  proto->set_durable_sequence(result.durable_sequence);
  proto->set_duplicates(result.duplicates);
}

absl::StatusOr<AmaxRequest> AmaxRequestFromProto(const v1::ComputeAmaxRequest& request) {
  AmaxRequest out{.params = ParamsFromProto(request.method(), request.percentile(),
                                            request.start_bin(), request.stride()),
                  .overrides = {}};
  for (const v1::OverrideEntry& entry : request.overrides()) {
    const v1::MethodOverride& method = entry.value();
    const bool added =
        out.overrides
            .emplace(entry.key(), ParamsFromProto(method.method(), method.percentile(),
                                                  method.start_bin(), method.stride()))
            .second;
    if (!added) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", ShortForMessage(request.model()), "', ComputeAmax: quantizer '",
                       ShortForMessage(entry.key()), "' has two overrides"));
    }
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> TensorMapFromProto(
    const google::protobuf::RepeatedPtrField<v1::TensorMapEntry>& entries,
    absl::string_view where) {
  std::map<std::string, std::string> out;
  for (const v1::TensorMapEntry& entry : entries) {
    if (!out.emplace(entry.key(), entry.value()).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": tensor_map names quantizer '",
                                                     ShortForMessage(entry.key()), "' twice"));
    }
  }
  return out;
}

absl::StatusOr<std::optional<AmaxRequest>> ExportComputeFromProto(
    const v1::ExportOnnxRequest& request) {
  if (!request.has_compute()) return std::nullopt;
  const std::string& named = request.compute().model();
  if (!named.empty() && named != request.model()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ExportOnnx of model '", ShortForMessage(request.model()), "': compute.model names model '",
        ShortForMessage(named), "'; leave it empty"));
  }
  return AmaxRequestFromProto(request.compute());
}

absl::StatusOr<OnnxExportChunk> ExportChunkFromProto(v1::ExportOnnxRequest& request) {
  OnnxExportChunk chunk{.model = request.model(),
                        .compute = std::nullopt,
                        .target = std::nullopt,
                        .tensor_map = {},
                        .explain = request.explain(),
                        .data = std::move(*request.mutable_data())};
  QCAL_ASSIGN_OR_RETURN(chunk.tensor_map,
                        TensorMapFromProto(request.tensor_map(),
                                           absl::StrCat("model '", ShortForMessage(request.model()),
                                                        "', ExportOnnx")));
  QCAL_ASSIGN_OR_RETURN(chunk.compute, ExportComputeFromProto(request));
  if (!request.target().empty()) {
    QCAL_ASSIGN_OR_RETURN(chunk.target, QdqTargetFromProto(request.target()));
  }
  if (!request.fp8_ops().empty()) {
    absl::StatusOr<Fp8Ops> fp8_ops = ParseFp8Ops(request.fp8_ops());
    if (!fp8_ops.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("ExportOnnx: ", fp8_ops.status().message()));
    }
    chunk.fp8_ops = *fp8_ops;
  }
  return chunk;
}

void ExplainEntryToProto(const ExplainEntry& entry, v1::ExplainEntry* proto) {
  proto->set_node(entry.node);
  proto->set_op_type(entry.op_type);
  proto->set_input(entry.input);
  proto->set_tensor(entry.tensor);
  switch (entry.decision) {
    case ExplainDecision::kQuantized:
      proto->set_decision(v1::EXPLAIN_DECISION_QUANTIZED);
      break;
    case ExplainDecision::kRewritten:
      proto->set_decision(v1::EXPLAIN_DECISION_REWRITTEN);
      break;
    case ExplainDecision::kKept:
      proto->set_decision(v1::EXPLAIN_DECISION_KEPT);
      break;
    case ExplainDecision::kSkipped:
      proto->set_decision(v1::EXPLAIN_DECISION_SKIPPED);
      break;
  }
  proto->set_quantizer(entry.quantizer);
  proto->set_rule(entry.rule);
  proto->set_reason(entry.reason);
}

void AmaxTableFormsToProto(AmaxTableForms forms, v1::AmaxTableResponse* proto) {
  if (forms.included.message) AmaxTableToProto(forms.table, proto->mutable_table());
  proto->set_json(std::move(forms.json));
  proto->set_trt_cache(std::move(forms.trt_cache));
  proto->mutable_warnings()->Add(std::make_move_iterator(forms.warnings.begin()),
                                 std::make_move_iterator(forms.warnings.end()));
}

void HistogramToProto(absl::string_view model, absl::string_view quantizer,
                      const HistogramSnapshot& histogram, v1::Histogram* proto) {
  proto->set_model(std::string(model));
  proto->set_quantizer(std::string(quantizer));
  proto->mutable_counts()->Add(histogram.counts.begin(), histogram.counts.end());
  proto->mutable_edges()->Add(histogram.edges.begin(), histogram.edges.end());
  proto->set_abs_max(histogram.abs_max);
  proto->set_total(histogram.total);
  proto->set_nonfinite(histogram.nonfinite);
}

absl::StatusOr<QdqTarget> QdqTargetFromProto(absl::string_view target) {
  if (target.empty() || target == "tensorrt") return QdqTarget::kTensorRT;
  if (target == "onnxruntime") return QdqTarget::kOnnxRuntime;
  return absl::InvalidArgumentError(absl::StrCat("ExportOnnx: unknown target '",
                                                 ShortForMessage(target),
                                                 "'; expected tensorrt or onnxruntime"));
}

}  // namespace qcal::server
