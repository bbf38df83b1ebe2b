// One ExportOnnx stream, independent of gRPC: the first chunk names the model and carries the
// options; the chunks' data, if any, is a float ONNX model to export instead of the stored one.
// Nothing is exported, and nothing stored, before the stream ends: Finish() runs the export,
// all or nothing (Model::ExportOnnx).
//
//   OnnxExport stream(registry, max_bytes);
//   QCAL_RETURN_IF_ERROR(stream.Add({.model = "net", .compute = request, .data = piece}));
//   QCAL_ASSIGN_OR_RETURN(OnnxExportResult result, stream.Finish());
#ifndef QCAL_SERVER_CORE_ONNX_EXPORT_H_
#define QCAL_SERVER_CORE_ONNX_EXPORT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/model.h"
#include "server/core/model_registry.h"
#include "server/core/state_budget.h"
#include "server/onnx/qdq_export.h"
#include "server/tables/compute_amax.h"

namespace qcal::server {

// One message of the stream (ExportOnnxRequest without the wire types).
struct OnnxExportChunk {
  // Required in the first chunk; later ones may leave it empty or repeat it.
  std::string model{};
  // The options, first chunk only: compute the table first (else the stored one is used), the
  // ConvTranspose axis convention (nullopt: TensorRT's), explicit quantizer -> tensor pairs for
  // the sent ONNX model.
  std::optional<AmaxRequest> compute{};
  std::optional<QdqTarget> target{};
  std::map<std::string, std::string> tensor_map{};
  // First chunk only: return the explain entries (OnnxExportResult::explain); otherwise they are
  // dropped. A later chunk may leave it false only.
  bool explain = false;
  // How FP8 pairs are written (nullopt: Fp8Ops::kOnnx); first chunk only.
  std::optional<Fp8Ops> fp8_ops{};
  // A piece of the serialized float ModelProto to export; no data at all exports the stored one.
  std::string data{};
};

class OnnxExport {
 public:
  // Sent models larger than `max_bytes` are refused (the UploadOnnx limit). The bytes received are
  // charged to `budget` (null: none) until the export is destroyed.
  OnnxExport(ModelRegistry& registry, int64_t max_bytes, StateBudget* budget = nullptr);
  OnnxExport(const OnnxExport&) = delete;
  OnnxExport& operator=(const OnnxExport&) = delete;

  // Errors: INVALID_ARGUMENT for a first chunk without a model, a chunk naming another model,
  // options after the first chunk; NOT_FOUND for an unknown model; RESOURCE_EXHAUSTED once the
  // bytes exceed max_bytes, or the budget has no room for them (--max-state-bytes).
  absl::Status Add(OnnxExportChunk chunk);

  // Exports (Model::ExportOnnx) from the sent ONNX model if any bytes arrived, else from the
  // stored one. INVALID_ARGUMENT for an empty stream, or a tensor_map without ONNX bytes;
  // NOT_FOUND when the model was deleted meanwhile; the errors of Model::ExportOnnx.
  absl::StatusOr<OnnxExportResult> Finish();

 private:
  ModelRegistry& registry_;
  const int64_t max_bytes_;
  // Empty until the first chunk.
  std::string model_;
  std::optional<AmaxRequest> compute_;
  QdqTarget target_ = QdqTarget::kTensorRT;
  Fp8Ops fp8_ops_ = Fp8Ops::kOnnx;
  std::map<std::string, std::string> tensor_map_;
  bool explain_ = false;
  std::string bytes_;
  StateBudget::Charge received_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_ONNX_EXPORT_H_
