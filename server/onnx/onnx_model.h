// Parsing and checking an uploaded float ONNX model.
//
//   absl::StatusOr<onnx::ModelProto> model = ParseOnnxModel(bytes);
//   if (!model.ok()) return model.status();  // INVALID_ARGUMENT, says why
#ifndef QCAL_SERVER_ONNX_ONNX_MODEL_H_
#define QCAL_SERVER_ONNX_ONNX_MODEL_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"

namespace qcal::server {

// Minimum default-domain opset: QuantizeLinear/DequantizeLinear with a per-axis scale need 13.
inline constexpr int64_t kMinOnnxOpset = 13;
// Maximum default-domain opset of a model the server takes in: the highest that Debian's ONNX 1.12
// (onnx::checker, the op schemas) knows. Its checker passes a model that claims 18 or later
// without checking it against the newer schemas (ReduceMean's axes became an input at 18), so
// such a model is refused instead of being checked against the wrong ones.
inline constexpr int64_t kMaxOnnxOpset = 17;

// Parses serialized ModelProto bytes and runs onnx::checker on them.
// Errors: INVALID_ARGUMENT for bytes that are not a ModelProto, a model the checker refuses, or a
// default-domain opset outside 13..17 (the message names the opset found and the limit).
absl::StatusOr<onnx::ModelProto> ParseOnnxModel(std::string_view bytes);

// Runs onnx::checker::check_model (onnx 1.12: structure, schemas, topological order; no shape
// inference). Errors: INVALID_ARGUMENT with the checker's message.
absl::Status CheckOnnxModel(const onnx::ModelProto& model);

// INVALID_ARGUMENT unless the default-domain opset is at least kMinOnnxOpset.
absl::Status CheckMinOpset(const onnx::ModelProto& model);

// INVALID_ARGUMENT when the default-domain opset is above kMaxOnnxOpset: "ONNX model has opset
// 18; opset 18 is above 17, the highest this server's ONNX 1.12 can check; export at opset
// 13..17". For models taken in (UploadOnnx, ExportOnnx's own model); the export's own output may
// go higher (FP8 needs 19).
absl::Status CheckMaxOpset(const onnx::ModelProto& model);

// The model's default-domain ("" or "ai.onnx") opset version; 0 when it imports none.
int64_t DefaultOpset(const onnx::ModelProto& model);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_ONNX_MODEL_H_
