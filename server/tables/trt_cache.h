// TensorRT calibration cache text from an amax table:
//
//   TRT-8601-EntropyCalibration2
//   input.1: 3c8f5c29
//   /conv1/Conv_output_0: 3d2a3f50
//
// One line per activation tensor: its name, then the 8 lowercase hex digits of the float32 bits
// of scale = amax / 127, in name order. TensorRT reads every entry as signed INT8 (scale x 127),
// so that is what is written for every 8-bit quantizer: an unsigned one (bound 255) is written as
// signed, scale amax / 127 (amax / 255 would make TensorRT see half its range), with a warning.
// Quantizers that are not 8-bit integers (FP8 E4M3 ones included: the cache is INT8 only, issue
// 5's rule; the FP8 ones in one warning that names the first 8) are left out with a warning,
// and so is an entry whose name (the
// tensor's, or an unbound quantizer's) contains ": ", which would make its line ambiguous
// ("x: 3f800000: 3c010a14").
// Activation quantizers are those whose name does not end in "_weight_quantizer" (TensorRT
// calibrates activations only). A per-channel activation quantizer contributes its largest
// channel amax. Scales come from ScalesFromAmax (server/tables/qdq_scale.h), the function the QDQ
// export uses, so both write the same scale for the same amax and bound: an amax of 0 (an
// all-zero activation) becomes scale 1, and a scale below the smallest normal float32 becomes
// that float (00800000), each with a warning; TensorRT cannot use a zero or subnormal scale.
#ifndef QCAL_SERVER_TABLES_TRT_CACHE_H_
#define QCAL_SERVER_TABLES_TRT_CACHE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/tables/amax_table.h"

namespace qcal::server {

inline constexpr absl::string_view kTrtCacheHeader = "TRT-8601-EntropyCalibration2";

struct TrtCache {
  std::string text{};
  // One per replaced scale, "TensorRT calibration cache: quantizer 'Q' tensor 'T' (per-tensor):
  // amax is 0; scale written as 1", per unsigned quantizer written as signed, per entry left
  // out, and one for all FP8 quantizers left out.
  std::vector<std::string> warnings{};
};

// `tensor_quantizers`: ONNX activation tensor -> the input quantizers that quantize it (from
// ActivationTensorQuantizers once an ONNX model is uploaded; empty before). A tensor takes the
// largest amax of its 8-bit integer quantizers that are in the table; an activation quantizer of
// the table bound to no tensor is listed under its own name. Errors (for a table no ComputeAmax
// produces): INVALID_ARGUMENT for a num_bits outside kernels::QuantBound's range, or a negative or
// non-finite amax.
absl::StatusOr<TrtCache> TrtCacheText(
    const AmaxTable& table,
    const std::map<std::string, std::vector<std::string>>& tensor_quantizers);

}  // namespace qcal::server

#endif  // QCAL_SERVER_TABLES_TRT_CACHE_H_
