// Models that already carry Q/DQ: rewrites the scales of the QuantizeLinear -> DequantizeLinear
// pairs an uploaded model has (pytorch-quantization's fake-quant export, or another tool's) from
// the server's amax table, before the export inserts pairs of its own (qdq_export.h).
//
// A pair is one default-domain QuantizeLinear and the DequantizeLinear node(s) reading its output.
// Its quantizer is found, first match wins:
//   1. an explicit pair (QdqOptions::explicit_pairs) naming the QuantizeLinear's input tensor;
//   2. the QuantizeLinear's scope, when it names a quantizer (one in the table, or a path ending
//      in "_quantizer"): torch.onnx exports a TensorQuantizer's nodes under its module path,
//      "/layer1/layer1.0/conv1/_input_quantizer/QuantizeLinear" is quantizer
//      "layer1.0.conv1._input_quantizer" (torch_onnx_names.h's ModuleOfScope, which also strips
//      repeated-call suffixes: a module's second call, "/fc/_input_quantizer_1/QuantizeLinear" in
//      torch 1.13, is "fc._input_quantizer");
//   3. its consumers (a tool without scopes): a DequantizeLinear output read as input 0 of a
//      Conv/ConvTranspose/Gemm/MatMul belongs to that module's _input_quantizer, as input 1 to its
//      _weight_quantizer (modules found as quantizer_binding.h does; a node without scope by its
//      weight's name, looking through the weight's own DequantizeLinear/QuantizeLinear); read as
//      input 0 of another scoped node (a pool), to "<module>._input_quantizer"; by an Add, to
//      "<block>.residual_quantizer". Several covered consumers: the largest amax, so none clips.
//
// Rewritten (decision kRewritten), with the rules of the export's new pairs:
//   - activations (the QuantizeLinear reads no constant): a calibrated table entry with one amax;
//     scale = amax / bound, per tensor (an existing axis attribute is dropped);
//   - weights (it reads an initializer or a Constant): when the table has the weight quantizer,
//     or the same module's input quantizer is calibrated (the export's rule for weights);
//     amax = max |w| of the initializer (weight_amax.h), per channel on the existing pair's axis
//     when its scale has one value per channel, else per tensor; num_bits/unsigned from the
//     weight's table entry, else QdqOptions' defaults;
//   - bound = kernels::QuantBound(num_bits, unsigned), num_bits 8 only (opset-13 QuantizeLinear);
//     zero point 0, int8, or uint8 for an unsigned quantizer under QdqTarget::kOnnxRuntime; under
//     kTensorRT an unsigned quantizer is written as signed INT8, scale amax / 127, with a warning
//     (TensorRT's INT8 is signed; the export's and trt_cache.h's rule); scales finite and > 0
//     (server/tables/qdq_scale.h).
// Every rewritten pair gets its own new scale and zero-point initializers
// ("<quantizer>/scale", "<quantizer>/zero_point", made unique), and its QuantizeLinear and
// DequantizeLinear nodes read them. So a scale shared by several pairs (one initializer or
// Constant read by pairs of different quantizers) is never changed under the pairs that still
// read it: those keep the old tensor; it is removed only when nothing reads it any more.
//
// Kept as they are (decision kKept, with the reason, and a warning): pairs whose quantizer the
// table lacks or has not calibrated (the quantizer looked for is named); an FP8 quantizer (the
// pair stays INT8); a QuantizeLinear whose output feeds anything but DequantizeLinear; a
// DequantizeLinear without QuantizeLinear (pre-quantized integer data such as ONNX Runtime's
// int8 weights: its scale belongs to the stored integers); a weight pair whose scale's shape
// cannot be read (not an initializer or Constant), or whose constant is a scalar or empty.
//
// Nothing is inserted: the number of QuantizeLinear/DequantizeLinear nodes is unchanged; the
// export's planner leaves node inputs already fed by a DequantizeLinear to this rewrite.
//
//   absl::StatusOr<ExistingQdq> existing = RewriteExistingQdq(model, table, options);
//   if (!existing.ok()) return existing.status();
//   for (const ExistingPair& p : existing->pairs) ...;  // explain entries, one per consumer
#ifndef QCAL_SERVER_ONNX_EXISTING_QDQ_H_
#define QCAL_SERVER_ONNX_EXISTING_QDQ_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"
#include "server/onnx/qdq_export.h"
#include "server/tables/amax_table.h"

namespace qcal::server {

enum class ExistingDecision {
  kRewritten,  // ExplainDecision REWRITTEN
  kKept,       // ExplainDecision KEPT
};

// One node input fed by the pair's DequantizeLinear output.
struct ExistingConsumer {
  std::string node;
  std::string op_type;
  int input = 0;
  std::string tensor;  // the DequantizeLinear output it reads
};

// One pair as found in the input model, and what was done with it: plain data that maps onto
// proto ExplainEntry, one entry per consumer (node, op_type, input, tensor; decision, quantizer,
// reason; rule e.g. "existing Q/DQ").
struct ExistingPair {
  std::string q_node;                 // "" for a DequantizeLinear without QuantizeLinear
  std::vector<std::string> dq_nodes;  // in graph order
  std::string tensor;                 // what is quantized: the QuantizeLinear's input
  // The quantizer whose amax gave the scale (kRewritten), or the one looked for (kKept; "" when
  // neither the scope nor a consumer names one).
  std::string quantizer;
  bool is_weight = false;
  ExistingDecision decision = ExistingDecision::kKept;
  // Why kept; for kRewritten, how the scale was chosen.
  std::string reason;
  std::vector<ExistingConsumer> consumers;
  // kRewritten only: the scale written (one value, or one per index of axis).
  std::vector<float> scale;
  std::optional<int> axis;
};

struct ExistingQdq {
  // The input model with the rewritten scales when rewritten > 0; left empty otherwise (use the
  // input model), so a model without covered pairs is not copied. The one copy made otherwise is
  // a third model-sized allocation during ExportQdq, next to its QDQ graph and serialization.
  onnx::ModelProto model;
  // In graph order of their QuantizeLinear (or lone DequantizeLinear).
  std::vector<ExistingPair> pairs;
  // One per kept pair, naming its nodes, tensor and quantizer; and ScalesFromAmax's (amax 0).
  std::vector<std::string> warnings;
  int rewritten = 0;  // pairs with kRewritten
};

// Errors (nothing is produced):
//   INVALID_ARGUMENT: default-domain opset outside 13..17; a covering quantizer with num_bits
//     other than 8 or an activation entry with more than one amax; an amax that is negative or
//     not finite; a weight that is not float32 or holds NaN/Inf; an axis attribute out of range
//     for the weight. Each message names the node, the tensor and the quantizer.
absl::StatusOr<ExistingQdq> RewriteExistingQdq(const onnx::ModelProto& model,
                                               const AmaxTable& table, const QdqOptions& options);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_EXISTING_QDQ_H_
