// Where the QDQ export puts activation Q/DQ pairs: the placement rules of qdq_export.h (weighted-op
// inputs, pooling inputs, residual Add shortcuts, Concat shared scales, inputs already quantized)
// applied to one graph, before pairs are formed. Each rule's decision for each node input it
// considers is an explain entry; each quantized input an ActivationRequest.
//
//   absl::StatusOr<Placement> p = PlanPlacement(graph, table, bindings, options, &warnings);
//   for (const ActivationRequest& r : p->requests) ...;  // (node, slot) <- quantizer's amax
#ifndef QCAL_SERVER_ONNX_QDQ_PLACEMENT_H_
#define QCAL_SERVER_ONNX_QDQ_PLACEMENT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/quant_format.h"
#include "onnx/onnx_pb.h"
#include "server/onnx/explain_entry.h"
#include "server/onnx/qdq_export.h"
#include "server/onnx/quantizer_binding.h"
#include "server/tables/amax_table.h"

namespace qcal::server {

// One node input that a placement rule quantizes from an activation quantizer's amax.
struct ActivationRequest {
  int node = 0;
  int slot = 0;
  std::string tensor;
  std::string quantizer;  // whose amax (after sharing: that of the pair)
  float amax = 0;
  bool is_unsigned = false;                                  // as written (TensorRT: always signed)
  size_t entry = 0;                                          // index into Placement::entries
  kernels::QuantFormat format = kernels::QuantFormat::kInt;  // the quantizer's (FP8: fp8_qdq.h)
};

// An explain entry with its position, for sorting into graph order.
struct PlacedEntry {
  int node = 0;
  int slot = 0;
  ExplainEntry entry;
};

struct Placement {
  // In rule order (weighted ops and pools, residual Adds, Concats); Concat members' amax already
  // raised to their group's largest.
  std::vector<ActivationRequest> requests;
  std::vector<PlacedEntry> entries;
  // Quantizable node -> its weight quantizer, for the nodes whose data input is quantized.
  std::map<int, std::string> weight_quantizer_of;
};

// Applies the rules of qdq_export.h for options.target. Appends warnings (unsigned written as
// signed for TensorRT, raised Concat amax).
// Errors: INVALID_ARGUMENT for a quantizer with num_bits other than 8, or an activation
// quantizer with more than one amax value.
absl::StatusOr<Placement> PlanPlacement(const onnx::GraphProto& graph, const AmaxTable& table,
                                        const std::map<std::string, QuantizerBinding>& bindings,
                                        const QdqOptions& options,
                                        std::vector<std::string>* warnings);

// opset-13 QuantizeLinear stores int8/uint8 only; other widths would clamp to the wrong range.
absl::Status CheckQdqNumBits(absl::string_view quantizer, int num_bits);

// "%g" of an amax or scale, as explain reasons and warnings print them.
std::string FormatAmax(float v);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_QDQ_PLACEMENT_H_
