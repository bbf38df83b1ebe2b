// FP8 E4M3 in the QDQ export (issue 12, item 4). A quantizer whose table entry has format
// kFp8E4M3 exports as a QuantizeLinear/DequantizeLinear pair with
//   scale      = amax / 448 (float32; kernels::kFp8E4M3Max, TensorRT's and ModelOpt's FP8 rule),
//   zero point = 0 of type FLOAT8E4M3FN (TensorProto data_type 17, written by number and as one
//                0x00 byte per element in raw_data: Debian's ONNX 1.12 predates the type),
//   saturate   = left at its default, 1 (values beyond +-448 * scale clamp to +-448 * scale);
// weights per channel with `axis`, as the INT8 export does. INT8 pairs in the same model stay
// INT8: opset-19 QuantizeLinear accepts both.
//
// FLOAT8E4M3FN joined QuantizeLinear/DequantizeLinear at opset 19, so after the pairs are in
// place FinishFp8Qdq either
//   - Fp8Ops::kOnnx: raises the default-domain opset to 19 (opset_upgrade.h: refused, naming the
//     op, when some op's schema changed meaning on the way) and checks the graph's structure
//     (graph_order.h), since ONNX 1.12's onnx::checker cannot read opset 19; or
//   - Fp8Ops::kTensorRT: rewrites each FP8 pair to TensorRT's custom ops
//     trt::TRT_FP8QuantizeLinear(x, scale) and trt::TRT_FP8DequantizeLinear(q, scale), domain
//     "trt", no zero point and no attributes, one scale per pair, as ModelOpt emits them
//     (modelopt/torch/quantization/export_onnx.py, _fp8_quantize/_fp8_dequantize/export_fp8).
//     The default-domain opset stays as it was, and onnx::checker runs on the result. ModelOpt's
//     export_fp8 takes a scalar amax, so a per-channel FP8 weight pair keeps its largest channel
//     scale, with a warning naming the weight.
// A model without FP8 pairs is returned unchanged by both (INT8-only exports keep their opset).
#ifndef QCAL_SERVER_ONNX_FP8_QDQ_H_
#define QCAL_SERVER_ONNX_FP8_QDQ_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/quant_format.h"
#include "onnx/onnx_pb.h"

namespace qcal::server {

// onnx.proto's TensorProto.FLOAT8E4M3FN (IR version 9); ONNX 1.12's enum stops at 16.
inline constexpr int32_t kOnnxFloat8E4M3FN = 17;

// How FP8 pairs reach the ONNX file.
enum class Fp8Ops {
  kOnnx,      // QuantizeLinear/DequantizeLinear-19 (default)
  kTensorRT,  // trt::TRT_FP8QuantizeLinear / trt::TRT_FP8DequantizeLinear
};

// The quantization bound of one pair: kernels::QuantBound(num_bits, is_unsigned) for integers,
// 448 for FP8 E4M3. Errors: INVALID_ARGUMENT for an FP8 quantizer that is unsigned or has
// num_bits other than 8 (naming the quantizer), and QuantBound's errors.
absl::StatusOr<float> QdqBound(absl::string_view quantizer, kernels::QuantFormat format,
                               int num_bits, bool is_unsigned);

// The zero point's TensorProto data type: kOnnxFloat8E4M3FN, UINT8 (unsigned int) or INT8.
int32_t ZeroPointDataType(kernels::QuantFormat format, bool is_unsigned);

// The post-pass described above; `model` is ExportQdq's result, already through onnx::checker.
// Errors (the model may then be partly changed; callers drop it): INVALID_ARGUMENT from
// RaiseOpset (the op that blocks opset 19), a structure check that fails, or a kTensorRT result
// that fails onnx::checker.
absl::Status FinishFp8Qdq(Fp8Ops ops, onnx::ModelProto* model, std::vector<std::string>* warnings);

// "onnx" -> kOnnx, "trt" -> kTensorRT (the CLI's --fp8-ops). INVALID_ARGUMENT otherwise.
absl::StatusOr<Fp8Ops> ParseFp8Ops(absl::string_view name);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_FP8_QDQ_H_
