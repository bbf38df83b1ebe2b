// Inserts QuantizeLinear/DequantizeLinear pairs into a float ONNX model: per-tensor on the data
// input of every Conv, ConvTranspose, Gemm and MatMul with a calibrated input quantizer,
// per-channel on its weight (amax taken from the weight initializer itself, since an eval-mode
// export has folded BatchNorm into it). scale = amax / bound, zero point 0.
#ifndef QCAL_SERVER_ONNX_QDQ_EXPORT_H_
#define QCAL_SERVER_ONNX_QDQ_EXPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"
#include "server/amax_table.h"

namespace qcal::server {

enum class QdqTarget {
  // ConvTranspose weights per channel on axis 0, as pytorch-quantization and TensorRT do.
  kTensorRT,
  // ConvTranspose weights per channel on axis 1 (their output channels), as ONNX Runtime wants.
  kOnnxRuntime,
};

struct QdqOptions {
  QdqTarget target = QdqTarget::kTensorRT;
  // Weight quantizers without an entry in the table use these.
  int default_weight_num_bits = 8;
  bool default_weight_unsigned = false;
  // quantizer -> tensor pairs that override the automatic matching (see quantizer_binding.h).
  std::map<std::string, std::string> explicit_pairs;
};

struct QdqResult {
  onnx::ModelProto model;
  // E.g. an amax of exactly 0 (a dead channel) written as scale 1, naming tensor and channel.
  std::vector<std::string> warnings;
};

// Errors (nothing is produced): INVALID_ARGUMENT when an amax is negative or non-finite (the
// message names the quantizer and tensor), a weight is not a float initializer, or the result
// fails onnx::checker; FAILED_PRECONDITION when no quantizer of the table matches a node.
absl::StatusOr<QdqResult> ExportQdq(const onnx::ModelProto& model, const AmaxTable& table,
                                    const QdqOptions& options);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_QDQ_EXPORT_H_
