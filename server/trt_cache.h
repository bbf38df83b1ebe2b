// TensorRT calibration cache text from an amax table:
//
//   TRT-8601-EntropyCalibration2
//   input.1: 3c8f5c29
//   /conv1/Conv_output_0: 3d2a3f50
//
// One line per activation tensor: its name, then the 8 lowercase hex digits of the float32 bits
// of scale = amax / bound (bound = 2^(num_bits - 1 + unsigned) - 1), in name order.
// Activation quantizers are those whose name does not end in "_weight_quantizer" (TensorRT
// calibrates activations only). A per-channel activation quantizer contributes its largest
// channel amax. An amax of 0 (an all-zero activation) is written as scale 1, as the QDQ export
// writes it, since TensorRT cannot use a zero scale.
#ifndef QCAL_SERVER_TRT_CACHE_H_
#define QCAL_SERVER_TRT_CACHE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/amax_table.h"

namespace qcal::server {

inline constexpr absl::string_view kTrtCacheHeader = "TRT-8601-EntropyCalibration2";

// `tensor_quantizers`: ONNX activation tensor -> the input quantizers that quantize it (from
// ActivationTensorQuantizers once an ONNX model is uploaded; empty before). A tensor takes the
// largest amax of its quantizers that are in the table; an activation quantizer of the table
// bound to no tensor is listed under its own name.
std::string TrtCacheText(const AmaxTable& table,
                         const std::map<std::string, std::vector<std::string>>& tensor_quantizers);

}  // namespace qcal::server

#endif  // QCAL_SERVER_TRT_CACHE_H_
