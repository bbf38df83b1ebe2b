#include "server/core/onnx_export.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/base/status_util.h"
#include "server/core/onnx_chunks.h"

namespace qcal::server {

OnnxExport::OnnxExport(ModelRegistry& registry, int64_t max_bytes, StateBudget* budget)
    : registry_(registry), max_bytes_(max_bytes), received_(budget) {}

absl::Status OnnxExport::Add(OnnxExportChunk chunk) {
  if (model_.empty()) {
    if (chunk.model.empty()) {
      return absl::InvalidArgumentError("the first ExportOnnx message needs `model`");
    }
    QCAL_RETURN_IF_ERROR(registry_.Find(chunk.model).status());
    model_ = std::move(chunk.model);
    compute_ = std::move(chunk.compute);
    target_ = chunk.target.value_or(QdqTarget::kTensorRT);
    tensor_map_ = std::move(chunk.tensor_map);
    explain_ = chunk.explain;
    fp8_ops_ = chunk.fp8_ops.value_or(Fp8Ops::kOnnx);
  } else if (!chunk.model.empty() && chunk.model != model_) {
    return absl::InvalidArgumentError(absl::StrCat("an ExportOnnx stream of model '", model_,
                                                   "' got a message for model '", chunk.model,
                                                   "'"));
  } else if (chunk.compute.has_value() || chunk.target.has_value() || !chunk.tensor_map.empty() ||
             chunk.explain || chunk.fp8_ops.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", model_,
        "', ExportOnnx: compute, target, tensor_map, explain and fp8_ops belong in the first "
        "message only"));
  }
  return AppendOnnxChunk(bytes_, std::move(chunk.data), max_bytes_, received_,
                         absl::StrCat("model '", model_, "', ExportOnnx"));
}

absl::StatusOr<OnnxExportResult> OnnxExport::Finish() {
  if (model_.empty()) {
    return absl::InvalidArgumentError("an ExportOnnx stream without messages exports nothing");
  }
  std::optional<SentOnnx> sent;
  if (!bytes_.empty()) {
    sent = SentOnnx{.bytes = std::move(bytes_), .tensor_map = std::move(tensor_map_)};
  } else if (!tensor_map_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", model_,
        "', ExportOnnx: tensor_map applies to an ONNX model sent in the same stream, and none "
        "was sent; send the model's bytes in `data`, or use UploadOnnx to change the stored "
        "model's tensor_map"));
  }
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
  QCAL_ASSIGN_OR_RETURN(OnnxExportResult result,
                        model->ExportOnnx(compute_, target_, sent, fp8_ops_));
  if (!explain_) result.explain.clear();
  return result;
}

}  // namespace qcal::server
