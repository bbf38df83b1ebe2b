// TensorRT's INT8 is signed (developer guide, "Q/DQ layer-placement recommendations": no UINT8),
// so for QdqTarget::kTensorRT an unsigned 8-bit quantizer is written as signed INT8, scale
// amax / 127, zero point int8 0, as the TensorRT calibration cache does (server/tables/
// trt_cache.h). ONNX Runtime runs uint8 Q/DQ, so kOnnxRuntime keeps it unsigned. The export's
// new pairs (activations and weights) and its rewrite of pairs a model already carries
// (existing_qdq.h) all decide here.
#ifndef QCAL_SERVER_ONNX_TENSORRT_SIGNEDNESS_H_
#define QCAL_SERVER_ONNX_TENSORRT_SIGNEDNESS_H_

#include <set>
#include <string>
#include <vector>

#include "server/onnx/qdq_export.h"

namespace qcal::server {

// Whether `quantizer`'s pair is written unsigned under `target`. The first time a quantizer is
// turned signed (tracked in *warned) a warning naming it goes to *warnings.
bool WrittenUnsigned(const std::string& quantizer, bool is_unsigned, QdqTarget target,
                     std::set<std::string>* warned, std::vector<std::string>* warnings);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_TENSORRT_SIGNEDNESS_H_
