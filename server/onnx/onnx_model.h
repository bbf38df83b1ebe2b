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

// Parses serialized ModelProto bytes and runs onnx::checker on them.
// Errors: INVALID_ARGUMENT for bytes that are not a ModelProto, a model the checker refuses, or a
// default-domain opset below 13 (the message names the opset found and the minimum).
absl::StatusOr<onnx::ModelProto> ParseOnnxModel(std::string_view bytes);

// Runs onnx::checker::check_model (onnx 1.12: structure, schemas, topological order; no shape
// inference). Errors: INVALID_ARGUMENT with the checker's message.
absl::Status CheckOnnxModel(const onnx::ModelProto& model);

// INVALID_ARGUMENT unless the default-domain opset is at least kMinOnnxOpset.
absl::Status CheckMinOpset(const onnx::ModelProto& model);

// The model's default-domain ("" or "ai.onnx") opset version; 0 when it imports none.
int64_t DefaultOpset(const onnx::ModelProto& model);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_ONNX_MODEL_H_
