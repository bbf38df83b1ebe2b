// Raising a model's default-domain (ai.onnx) opset to 19, which FP8 QuantizeLinear and
// DequantizeLinear need (FLOAT8E4M3FN joined their type constraints at 19), without changing what
// any node computes.
//
// A node may move from the model's opset F to 19 when every schema version its op gained in
// (F, 19] is on a checked list of changes that keep the meaning of a node valid at F: added input
// types, or a new attribute/optional input whose default is the old behaviour (Reshape-14's
// allowzero = 0, AveragePool-19's dilations = 1, ...). Any other change refuses the upgrade,
// naming the node, its op and the opset it changed at: ReduceMean and the other Reduce* ops
// (axes moved from an attribute to an input at 18), Split (18: without a `split` input it needs
// num_outputs), Resize (18 and 19: new attributes and coordinate modes, not verified here),
// RoiAlign (16: the default coordinate_transformation_mode changed), OptionalGetElement /
// OptionalHasElement (18), and every other op version not on the list. Sources: ONNX's
// docs/Changelog.md for 18 and 19 (ONNX 1.14); for 14..17 the schema registry of the linked
// ONNX (Debian's 1.12 knows up to 17) lists each op's versions, so a change the list does not
// cover is refused rather than missed. BatchNormalization is accepted only in inference form (one
// output): its training outputs changed at 14.
//
// Nodes of other domains keep their own opset imports; subgraphs (If, Loop, Scan) and local
// functions are checked like the main graph.
//
// The IR version becomes at least 9 (IR 9 added the FLOAT8 types, ONNX 1.14). ONNX 1.12's
// onnx::checker refuses IR 9 and knows no opset-19 schema, so callers check the model before the
// upgrade and only its structure after (graph_order.h).
//
//   if (absl::Status s = RaiseOpset(&model, kFp8Opset); !s.ok()) return s;
#ifndef QCAL_SERVER_ONNX_OPSET_UPGRADE_H_
#define QCAL_SERVER_ONNX_OPSET_UPGRADE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "onnx/onnx_pb.h"

namespace qcal::server {

// QuantizeLinear-19 / DequantizeLinear-19: the first opset with FLOAT8E4M3FN.
inline constexpr int64_t kFp8Opset = 19;
// IR version 9 (ONNX 1.14): the first with the FLOAT8 tensor types.
inline constexpr int64_t kFp8IrVersion = 9;

// OK when every default-domain node of `model` means the same at `to` as at the model's opset.
// Errors: INVALID_ARGUMENT naming the first node that does not (node name, op, the opset its
// schema changed at and why), an op unknown at the model's opset, or `to` other than 19 (the
// list covers 14..19 only) or below the model's opset.
absl::Status CheckOpsetUpgrade(const onnx::ModelProto& model, int64_t to);

// CheckOpsetUpgrade, then sets the default-domain opset import to `to` and the IR version to at
// least kFp8IrVersion. A model already at `to` is left as is. On error the model is unchanged.
absl::Status RaiseOpset(onnx::ModelProto* model, int64_t to);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_OPSET_UPGRADE_H_
