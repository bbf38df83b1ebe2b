#include "server/onnx/weight_amax.h"

#include <cmath>
#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "onnx/defs/tensor_proto_util.h"

namespace qcal::server {
namespace {

int64_t IntAttribute(const onnx::NodeProto& node, absl::string_view name, int64_t fallback) {
  for (const onnx::AttributeProto& attr : node.attribute()) {
    if (attr.name() == name) return attr.i();
  }
  return fallback;
}

absl::Status RankError(const onnx::NodeProto& node, int rank, absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(node.op_type(), " node '", node.name(),
                                                 "': weight '", node.input(1), "' has rank ", rank,
                                                 ", expected ", expected));
}

}  // namespace

absl::StatusOr<int> WeightChannelAxis(const onnx::NodeProto& node, int weight_rank,
                                      QdqTarget target) {
  const std::string& op = node.op_type();
  if (op == "Conv" || op == "ConvTranspose") {
    if (weight_rank < 3) return RankError(node, weight_rank, ">= 3");
    if (op == "ConvTranspose" && target == QdqTarget::kOnnxRuntime) return 1;
    return 0;
  }
  if (op == "Gemm") {
    if (weight_rank != 2) return RankError(node, weight_rank, "2");
    return IntAttribute(node, "transB", 0) != 0 ? 0 : 1;
  }
  if (op == "MatMul") {
    if (weight_rank < 2) return RankError(node, weight_rank, ">= 2");
    return weight_rank - 1;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("node '", node.name(), "' is a ", op,
                   ", not a Conv, ConvTranspose, Gemm or MatMul: no weight channel axis"));
}

absl::StatusOr<std::vector<float>> PerChannelAbsMax(const onnx::TensorProto& weight, int axis) {
  const std::string& name = weight.name();
  if (weight.data_type() != onnx::TensorProto::FLOAT) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight '", name, "' has ONNX data type ", weight.data_type(),
                     ", not float32 (1); the QDQ export takes weight amax from float weights"));
  }
  if (weight.data_location() == onnx::TensorProto::EXTERNAL) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight '", name,
                     "' is stored as external data; upload a model that "
                     "holds its weights"));
  }
  const int rank = weight.dims_size();
  if (axis < 0 || axis >= rank) {
    return absl::InvalidArgumentError(absl::StrCat("weight '", name, "': channel axis ", axis,
                                                   " is out of range for rank ", rank));
  }
  int64_t count = 1;
  for (int64_t d : weight.dims()) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat("weight '", name, "' has a negative dim"));
    }
    count *= d;
  }
  std::vector<float> values;
  try {
    values = onnx::ParseData<float>(&weight);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight '", name, "': cannot read its data: ", e.what()));
  }
  if (static_cast<int64_t>(values.size()) != count) {
    return absl::InvalidArgumentError(absl::StrCat("weight '", name, "' holds ", values.size(),
                                                   " values but its dims make ", count));
  }
  // Row-major [outer, channels, inner].
  const int64_t channels = weight.dims(axis);
  int64_t inner = 1;
  for (int i = axis + 1; i < rank; ++i) inner *= weight.dims(i);
  const int64_t outer = channels == 0 || inner == 0 ? 0 : count / (channels * inner);
  std::vector<float> amax(channels, 0.0f);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < channels; ++c) {
      const float* row = values.data() + (o * channels + c) * inner;
      for (int64_t k = 0; k < inner; ++k) {
        const float v = row[k];
        if (!std::isfinite(v)) {
          return absl::InvalidArgumentError(
              absl::StrCat("weight '", name, "' channel ", c, " (axis ", axis, ") holds ",
                           absl::StrFormat("%g", v), "; weights must be finite"));
        }
        amax[c] = std::max(amax[c], std::fabs(v));
      }
    }
  }
  return amax;
}

}  // namespace qcal::server
