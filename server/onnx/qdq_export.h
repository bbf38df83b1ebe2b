// Inserts QuantizeLinear/DequantizeLinear pairs into a float ONNX model for TensorRT (default) or
// ONNX Runtime. Placement rules (applied by qdq_placement.h), each listed in QdqResult::explain
// under its rule name (explain_entry.h):
//   - "weighted-op input": input 0 of every Conv, ConvTranspose, Gemm and MatMul, per tensor,
//     from "<module>._input_quantizer" (pytorch-quantization's Quant* modules; TensorRT
//     developer guide, "Q/DQ layer-placement recommendations": quantize all inputs of weighted
//     ops);
//   - "weighted-op weight": their weight (input 1), per channel, amax from the initializer
//     (below), only when the data input is quantized;
//   - "pooling input": input 0 of MaxPool, AveragePool, GlobalAveragePool from the pool module's
//     "_input_quantizer" (QuantMaxPool/QuantAvgPool/QuantAdaptiveAvgPool; the guide: MaxPool
//     commutes with Q/DQ, AveragePool fuses with its input DQ);
//   - "residual add shortcut" / "residual add conv side": a residual Add (residual_add.h) gets
//     Q/DQ on its shortcut input only, from "<block>.residual_quantizer"; the conv-side input
//     fuses into the conv epilogue and stays float (the guide; ModelOpt graph_utils.py
//     build_non_residual_input_map). When the shortcut tensor is already quantized for a Conv or
//     pool (BasicBlock without downsample: identity == conv1's input), that quantizer's scale is
//     used, since it is the same tensor; the residual quantizer is then unused (said in explain).
//   - "concat shared scale": a Concat's inputs and output (transitively through nested Concats)
//     share one scale, the largest amax among their quantized readers, so TensorRT removes the
//     requantization; each raised amax is a warning. A Concat input whose tensor is quantized
//     for another reader reads that pair too. ModelOpt reaches the same by quantizing Concat as a
//     copy op; here no new pair is added for the Concat alone.
//   - "already quantized": an input produced by a DequantizeLinear of the input model gets
//     nothing (decision kKept; the rewrite of such pairs happens before planning).
// Targets:
//   kTensorRT: one pair per tensor, shared by all its quantized readers, with their largest
//     amax (a warning when they differ); unsigned 8-bit quantizers written as signed INT8, scale
//     amax / 127, with a warning (TensorRT's INT8 is signed; same rule as trt_cache.h);
//     ConvTranspose weights per channel on axis 0.
//   kOnnxRuntime: a dedicated pair per reader: ORT groups DQ -> op -> Q into a node unit only
//     when the op is the DQ's only consumer (onnxruntime core/framework/node_unit.cc,
//     QDQ::NodeGroup::CanCreateNodeGroup; its quantizer's DedicatedQDQPair option). Newer ORT
//     duplicates shared DQs itself (EnsureUniqueDQForNodeUnit); writing them dedicated serves
//     every version and other QDQ consumers alike. Unsigned stays uint8;
//     ConvTranspose weights on axis 1. The residual Add then runs in float in ORT, as in TRT
//     terms the conv side is left to fuse.
// scale = amax / bound (bound = kernels::QuantBound(num_bits, unsigned)), zero point 0: int8, or
// uint8 for an unsigned quantizer under kOnnxRuntime. Nodes are found as quantizer_binding.h
// describes.
//
// Weight amax is taken from the weight initializer itself (max |w| per channel, weight_amax.h),
// since an eval-mode export has already folded BatchNorm into it; the table's weight entry, when
// there is one, gives num_bits and unsigned only. Channel axes are in weight_amax.h.
//
// Each pair is put just before its first consumer so the graph stays topologically sorted; new
// node, tensor and initializer names are unique in the graph ("conv1._input_quantizer/
// QuantizeLinear", ".../scale", ".../zero_point"); every scale finite and > 0
// (server/tables/qdq_scale.h); onnx::checker passes.
//
//   QdqOptions options;  // kTensorRT, 8-bit signed weights
//   absl::StatusOr<QdqResult> qdq = ExportQdq(model, table, options);
//   for (const std::string& w : qdq->warnings) spdlog::warn("{}", w);
//   for (const ExplainEntry& e : qdq->explain) ...;  // one per node input considered
#ifndef QCAL_SERVER_ONNX_QDQ_EXPORT_H_
#define QCAL_SERVER_ONNX_QDQ_EXPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"
#include "server/onnx/explain_entry.h"
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
  // Every node input a placement rule considered, in graph order (node index, then input slot),
  // with its decision and reason: weighted ops' inputs 0 and 1, pools' input 0, both inputs of
  // two-input Adds without a constant input, Concat inputs.
  std::vector<ExplainEntry> explain;
};

// A quantizer is calibrated when its table entry has an amax. Nodes without a calibrated input
// quantizer stay float (weights included). Warnings also name quantizers that match no node.
// Errors (nothing is produced):
//   INVALID_ARGUMENT: default-domain opset below 13; an amax that is negative or non-finite
//     (naming quantizer, tensor and channel); an input quantizer with more than one amax value;
//     a weight entry whose per-channel amax length differs from the weight's channel count;
//     num_bits other than 8 (opset-13 QuantizeLinear holds int8/uint8 only); a weight that is
//     not a float32 initializer in the model, or holds NaN/Inf; a bad explicit pair; a result
//     that fails onnx::checker; FP8 pairs in a model with an op whose meaning changes on the
//     way to opset 19 (fp8_qdq.h, opset_upgrade.h).
//   FAILED_PRECONDITION: no rule quantizes any activation (no calibrated input or residual
//     quantizer of the table matches a node).
absl::StatusOr<QdqResult> ExportQdq(const onnx::ModelProto& model, const AmaxTable& table,
                                    const QdqOptions& options);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_QDQ_EXPORT_H_
