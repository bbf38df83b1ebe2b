#include "server/core/onnx_upload.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/base/status_util.h"
#include "server/core/onnx_chunks.h"

namespace qcal::server {

OnnxUpload::OnnxUpload(ModelRegistry& registry, int64_t max_bytes, StateBudget* budget)
    : registry_(registry), max_bytes_(max_bytes), received_(budget) {}

absl::Status OnnxUpload::Add(OnnxUploadChunk chunk) {
  if (model_.empty()) {
    if (chunk.model.empty()) {
      return absl::InvalidArgumentError("the first UploadOnnx message needs `model`");
    }
    QCAL_RETURN_IF_ERROR(registry_.Find(chunk.model).status());
    model_ = std::move(chunk.model);
    tensor_map_ = std::move(chunk.tensor_map);
  } else if (!chunk.model.empty() && chunk.model != model_) {
    return absl::InvalidArgumentError(absl::StrCat("an UploadOnnx stream of model '", model_,
                                                   "' got a message for model '", chunk.model,
                                                   "'"));
  } else if (!chunk.tensor_map.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", model_, "', UploadOnnx: tensor_map belongs in the first message only"));
  }
  return AppendOnnxChunk(bytes_, std::move(chunk.data), max_bytes_, received_,
                         absl::StrCat("model '", model_, "', UploadOnnx"));
}

absl::StatusOr<OnnxUploadResult> OnnxUpload::Finish() {
  if (model_.empty()) {
    return absl::InvalidArgumentError("an UploadOnnx stream without messages uploads nothing");
  }
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
  return model->UploadOnnx(bytes_, std::move(tensor_map_));
}

}  // namespace qcal::server
