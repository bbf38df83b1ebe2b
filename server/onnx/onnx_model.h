// Parsing and checking an uploaded float ONNX model.
#ifndef QCAL_SERVER_ONNX_ONNX_MODEL_H_
#define QCAL_SERVER_ONNX_ONNX_MODEL_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"

namespace qcal::server {

// Minimum default-domain opset: QuantizeLinear/DequantizeLinear with a per-axis scale need 13.
inline constexpr int64_t kMinOnnxOpset = 13;

// Parses serialized ModelProto bytes and runs onnx::checker on them.
// Errors: INVALID_ARGUMENT for bytes that are not a ModelProto, a model the checker refuses, or a
// default-domain opset below 13 (the message names the opset found).
absl::StatusOr<onnx::ModelProto> ParseOnnxModel(std::string_view bytes);

// The model's default-domain ("" or "ai.onnx") opset version; 0 when it imports none.
int64_t DefaultOpset(const onnx::ModelProto& model);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_ONNX_MODEL_H_
