// What the QDQ export decided for one node input, and why: proto qcal.v1.ExplainEntry without the
// wire types (server/rpc converts). ExportQdq lists one per node input a placement rule
// considered, in graph order (node index, then input slot).
//
//   for (const ExplainEntry& e : qdq->explain)
//     std::cout << e.node << " input " << e.input << ": " << ExplainDecisionName(e.decision);
#ifndef QCAL_SERVER_ONNX_EXPLAIN_ENTRY_H_
#define QCAL_SERVER_ONNX_EXPLAIN_ENTRY_H_

#include <string>

namespace qcal::server {

// Mirrors proto qcal.v1.ExplainDecision (same meanings, same order).
enum class ExplainDecision {
  kQuantized,  // a new QuantizeLinear/DequantizeLinear pair feeds this input
  kRewritten,  // came from a DequantizeLinear of the input model; its scale was rewritten
  kKept,       // came from a DequantizeLinear of the input model, kept as it was
  kSkipped,    // left float; `reason` says why
};

struct ExplainEntry {
  std::string node;     // the node's name
  std::string op_type;  // its op_type
  int input = 0;        // which of its inputs (0-based)
  std::string tensor;   // that input's tensor name (in the input model)
  ExplainDecision decision = ExplainDecision::kSkipped;
  // The quantizer whose amax gave the scale (kQuantized, kRewritten), else the one looked for
  // ("" when there is no name to look for).
  std::string quantizer;
  // The placement rule: kRuleWeightedInput, kRuleWeight, kRulePooling, kRuleResidualShortcut,
  // kRuleResidualConvSide, kRuleNotResidual, kRuleConcat, kRuleAlreadyQuantized.
  std::string rule;
  // Why not (kSkipped, kKept), or how the scale was chosen (amax, shared pair, raised amax).
  std::string reason;
};

inline constexpr char kRuleWeightedInput[] = "weighted-op input";
inline constexpr char kRuleWeight[] = "weighted-op weight";
inline constexpr char kRulePooling[] = "pooling input";
inline constexpr char kRuleResidualShortcut[] = "residual add shortcut";
inline constexpr char kRuleResidualConvSide[] = "residual add conv side";
inline constexpr char kRuleNotResidual[] = "add (not residual)";
inline constexpr char kRuleConcat[] = "concat shared scale";
inline constexpr char kRuleAlreadyQuantized[] = "already quantized";

// "quantized", "rewritten", "kept", "skipped".
inline const char* ExplainDecisionName(ExplainDecision d) {
  switch (d) {
    case ExplainDecision::kQuantized:
      return "quantized";
    case ExplainDecision::kRewritten:
      return "rewritten";
    case ExplainDecision::kKept:
      return "kept";
    case ExplainDecision::kSkipped:
      return "skipped";
  }
  return "";
}

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_EXPLAIN_ENTRY_H_
