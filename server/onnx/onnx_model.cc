#include "server/onnx/onnx_model.h"

#include <climits>
#include <exception>
#include <string>

#include "absl/strings/str_cat.h"
#include "onnx/checker.h"

namespace qcal::server {

absl::StatusOr<onnx::ModelProto> ParseOnnxModel(std::string_view bytes) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError("ONNX model is empty (0 bytes)");
  }
  // Protobuf messages are limited to 2 GiB; larger ONNX models keep weights as external data.
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ONNX model of ", bytes.size(), " bytes is larger than a protobuf message can be (2 GiB)"));
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("ONNX model of ", bytes.size(), " bytes does not parse as a ModelProto"));
  }
  // Before the checker: ONNX 1.12 would check an opset-18 model against its opset-17 schemas.
  if (absl::Status s = CheckMaxOpset(model); !s.ok()) return s;
  if (absl::Status s = CheckOnnxModel(model); !s.ok()) return s;
  if (absl::Status s = CheckMinOpset(model); !s.ok()) return s;
  return model;
}

absl::Status CheckOnnxModel(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("ONNX checker refuses the model: ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status CheckMinOpset(const onnx::ModelProto& model) {
  const int64_t opset = DefaultOpset(model);
  if (opset == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ONNX model imports no default-domain (ai.onnx) opset; opset ", kMinOnnxOpset,
                     " is the minimum (QuantizeLinear/DequantizeLinear with a per-axis scale)"));
  }
  if (opset < kMinOnnxOpset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ONNX model has opset ", opset, "; opset ", kMinOnnxOpset,
        " is the minimum (QuantizeLinear/DequantizeLinear with a per-axis scale); re-export "
        "with opset_version=",
        kMinOnnxOpset, " or later"));
  }
  return absl::OkStatus();
}

absl::Status CheckMaxOpset(const onnx::ModelProto& model) {
  const int64_t opset = DefaultOpset(model);
  if (opset <= kMaxOnnxOpset) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("ONNX model has opset ", opset, "; opset ", opset, " is above ", kMaxOnnxOpset,
                   ", the highest this server's ONNX 1.12 can check; export at opset ",
                   kMinOnnxOpset, "..", kMaxOnnxOpset));
}

int64_t DefaultOpset(const onnx::ModelProto& model) {
  for (const onnx::OperatorSetIdProto& opset : model.opset_import()) {
    if (opset.domain().empty() || opset.domain() == "ai.onnx") return opset.version();
  }
  return 0;
}

}  // namespace qcal::server
