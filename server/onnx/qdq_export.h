// Inserts QuantizeLinear/DequantizeLinear pairs into a float ONNX model, as pytorch-quantization's
// QDQ export does: per-tensor on the data input (input 0) of every Conv, ConvTranspose, Gemm and
// MatMul with a calibrated input quantizer, per-channel on that node's weight (input 1).
// scale = amax / bound (bound = kernels::QuantBound(num_bits, unsigned)), zero point 0: int8, or
// uint8 for an unsigned quantizer. Nodes are found as quantizer_binding.h describes.
//
// Weight amax is taken from the weight initializer itself (max |w| per channel, weight_amax.h),
// since an eval-mode export has already folded BatchNorm into it; the table's weight entry, when
// there is one, gives num_bits and unsigned only. Channel axes are in weight_amax.h.
//
// The result: a pair per (input quantizer, tensor) and per (weight, axis, format), each put just
// before its first consumer so the graph stays topologically sorted; new node, tensor and
// initializer names are unique in the graph ("conv1._input_quantizer/QuantizeLinear",
// ".../scale", ".../zero_point"); every scale finite and > 0 (server/tables/qdq_scale.h);
// onnx::checker passes.
//
//   QdqOptions options;  // kTensorRT, 8-bit signed weights
//   absl::StatusOr<QdqResult> qdq = ExportQdq(model, table, options);
//   for (const std::string& w : qdq->warnings) spdlog::warn("{}", w);
#ifndef QCAL_SERVER_ONNX_QDQ_EXPORT_H_
#define QCAL_SERVER_ONNX_QDQ_EXPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"
#include "server/onnx/fp8_qdq.h"
#include "server/tables/amax_table.h"

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
  // A pair may name a quantizer the table lacks: it still takes its node input away from the
  // automatic matching, and exports nothing itself.
  std::map<std::string, std::string> explicit_pairs;
  // How FP8 E4M3 pairs are written (fp8_qdq.h): opset-19 QuantizeLinear/DequantizeLinear, or
  // TensorRT's TRT_FP8 custom ops.
  Fp8Ops fp8_ops = Fp8Ops::kOnnx;
};

struct QdqResult {
  onnx::ModelProto model;
  // E.g. an amax of exactly 0 (a dead channel) written as scale 1, naming tensor and channel; a
  // calibrated quantizer that matches no node; an input quantizer without amax.
  std::vector<std::string> warnings;
};

// A quantizer is calibrated when its table entry has an amax. Nodes without a calibrated input
// quantizer stay float (weights included).
// Errors (nothing is produced):
//   INVALID_ARGUMENT: default-domain opset below 13; an amax that is negative or non-finite
//     (naming quantizer, tensor and channel); an input quantizer with more than one amax value;
//     a weight entry whose per-channel amax length differs from the weight's channel count;
//     num_bits other than 8 (opset-13 QuantizeLinear holds int8/uint8 only); a weight that is
//     not a float32 initializer in the model, or holds NaN/Inf; a bad explicit pair; a result
//     that fails onnx::checker; FP8 pairs in a model with an op whose meaning changes on the
//     way to opset 19 (fp8_qdq.h, opset_upgrade.h).
//   FAILED_PRECONDITION: no calibrated input quantizer of the table matches a node.
absl::StatusOr<QdqResult> ExportQdq(const onnx::ModelProto& model, const AmaxTable& table,
                                    const QdqOptions& options);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_QDQ_EXPORT_H_
