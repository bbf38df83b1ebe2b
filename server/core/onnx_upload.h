// One UploadOnnx stream, independent of gRPC: the pieces of a serialized ModelProto are
// collected (up to a size limit) and the whole is parsed and stored when the stream ends.
//
//   OnnxUpload upload(registry, max_bytes);
//   QCAL_RETURN_IF_ERROR(upload.Add({.model = "net", .data = piece, .tensor_map = {}}));
//   QCAL_ASSIGN_OR_RETURN(OnnxUploadResult result, upload.Finish());
#ifndef QCAL_SERVER_CORE_ONNX_UPLOAD_H_
#define QCAL_SERVER_CORE_ONNX_UPLOAD_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/model.h"
#include "server/core/model_registry.h"
#include "server/core/state_budget.h"

namespace qcal::server {

// One message of the stream (UploadOnnxRequest without the wire types).
struct OnnxUploadChunk {
  // Required in the first chunk; later ones may leave it empty or repeat it.
  std::string model{};
  std::string data{};
  // First chunk only: quantizer -> tensor pairs that override the automatic matching.
  std::map<std::string, std::string> tensor_map{};
};

class OnnxUpload {
 public:
  // Models larger than `max_bytes` are refused. The bytes received are charged to `budget` (null:
  // none) until the upload is destroyed.
  OnnxUpload(ModelRegistry& registry, int64_t max_bytes, StateBudget* budget = nullptr);
  OnnxUpload(const OnnxUpload&) = delete;
  OnnxUpload& operator=(const OnnxUpload&) = delete;

  // Errors: INVALID_ARGUMENT for a first chunk without a model, a chunk naming another model, a
  // tensor_map after the first chunk; NOT_FOUND for an unknown model; RESOURCE_EXHAUSTED once the
  // bytes exceed max_bytes, or the budget has no room for them (--max-state-bytes).
  absl::Status Add(OnnxUploadChunk chunk);

  // Parses the whole model and stores it (Model::UploadOnnx). INVALID_ARGUMENT for an empty
  // stream; NOT_FOUND when the model was deleted meanwhile; the errors of Model::UploadOnnx.
  absl::StatusOr<OnnxUploadResult> Finish();

  // The model named by the first chunk (empty before it).
  const std::string& model() const { return model_; }

 private:
  ModelRegistry& registry_;
  const int64_t max_bytes_;
  // Empty until the first chunk.
  std::string model_;
  std::string bytes_;
  std::map<std::string, std::string> tensor_map_;
  StateBudget::Charge received_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_ONNX_UPLOAD_H_
