// Conversions between the wire types (qcal.v1 messages) and the core types. The service's
// handlers call these, so no handler touches a field's meaning: "0 means the default" and the
// enum checks are resolved here, in one place.
#ifndef QCAL_SERVER_RPC_PROTO_CONVERT_H_
#define QCAL_SERVER_RPC_PROTO_CONVERT_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/dtype.h"
#include "qcal/v1/calibration.pb.h"
#include "server/core/calibration_core.h"
#include "server/core/model.h"
#include "server/core/onnx_export.h"
#include "server/onnx/qdq_export.h"
#include "server/storage/model_state.h"
#include "server/tables/compute_amax.h"
#include "server/tables/quantizer_spec.h"

namespace qcal::server {

// INVALID_ARGUMENT for DTYPE_UNSPECIFIED or a value outside the enum, naming the quantizer.
absl::StatusOr<kernels::DType> DTypeFromProto(int dtype, absl::string_view quantizer);

// SpecFromProto, SpecToProto, AmaxTableToProto and HistogramLayoutToProto come from
// storage/model_state.h (state files hold the same messages).

// HISTOGRAM_LAYOUT_UNSPECIFIED -> nullopt (the server's default); INVALID_ARGUMENT, prefixed by
// `where`, for a value outside the enum.
absl::StatusOr<std::optional<kernels::HistogramLayout>> HistogramLayoutFromProto(
    int layout, absl::string_view where);

// Unset defaults take DESIGN.md's; a declared quantizer with an unspecified calibrator takes
// that of the model's default descriptor for its role.
absl::StatusOr<ModelConfig> ModelConfigFromProto(const v1::CreateModelRequest& request);
void ModelInfoToProto(const ModelInfo& info, v1::ModelInfo* proto);

// A pre-aggregated batch without the wire types (checked later, against its quantizer).
// INVALID_ARGUMENT, naming model and quantizer, when neither `histogram` nor `max` is set.
absl::StatusOr<PartialState> PartialStateFromProto(const v1::PartialState& proto,
                                                   absl::string_view model,
                                                   absl::string_view quantizer);

// Moves the data out of `request`; a partial state comes with its serialized size.
absl::StatusOr<RecordChunk> RecordChunkFromProto(v1::RecordRequest& request);

// What a Record stream applied, as RecordResponse.
void RecordResponseFromStats(const BatchStats& applied, v1::RecordResponse* proto);
// The same with the session's sequences and the duplicates dropped.
void RecordResponseFromResult(const RecordStreamResult& result, v1::RecordResponse* proto);

// INVALID_ARGUMENT for a quantizer with two overrides.
absl::StatusOr<AmaxRequest> AmaxRequestFromProto(const v1::ComputeAmaxRequest& request);

// A tensor_map's entries as a map; INVALID_ARGUMENT, prefixed by `where`, for a quantizer named
// twice.
absl::StatusOr<std::map<std::string, std::string>> TensorMapFromProto(
    const google::protobuf::RepeatedPtrField<v1::TensorMapEntry>& entries, absl::string_view where);
// ExportOnnx's `compute`: nullopt when unset. INVALID_ARGUMENT when compute.model names another
// model than the request (it may be empty).
absl::StatusOr<std::optional<AmaxRequest>> ExportComputeFromProto(
    const v1::ExportOnnxRequest& request);
// One ExportOnnx message; moves the data out of `request`. An empty target stays nullopt.
// Errors: those of ExportComputeFromProto and QdqTargetFromProto.
absl::StatusOr<OnnxExportChunk> ExportChunkFromProto(v1::ExportOnnxRequest& request);

// server/onnx/explain_entry.h -> v1::ExplainEntry (same fields; decisions map one to one).
void ExplainEntryToProto(const ExplainEntry& entry, v1::ExplainEntry* proto);

// ComputeAmax's and GetAmaxTable's response.
void AmaxTableFormsToProto(AmaxTableForms forms, v1::AmaxTableResponse* proto);

void HistogramToProto(absl::string_view model, absl::string_view quantizer,
                      const HistogramSnapshot& histogram, v1::Histogram* proto);

// "" and "tensorrt" -> kTensorRT, "onnxruntime" -> kOnnxRuntime; INVALID_ARGUMENT otherwise.
absl::StatusOr<QdqTarget> QdqTargetFromProto(absl::string_view target);

}  // namespace qcal::server

#endif  // QCAL_SERVER_RPC_PROTO_CONVERT_H_
