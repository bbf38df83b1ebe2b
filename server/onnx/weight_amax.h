// Per-channel weight amax taken from the ONNX initializer itself. An eval-mode torch.onnx export
// has already folded BatchNorm into conv weights, so amax computed by the trainer on the
// unfolded weights would be wrong; the initializer holds the weights the runtime will use.
//
//   int axis = *WeightChannelAxis(node, /*weight_rank=*/4, QdqTarget::kTensorRT);
//   std::vector<float> amax = *PerChannelAbsMax(initializer, axis);  // one per channel
#ifndef QCAL_SERVER_ONNX_WEIGHT_AMAX_H_
#define QCAL_SERVER_ONNX_WEIGHT_AMAX_H_

#include <vector>

#include "absl/status/statusor.h"
#include "onnx/onnx_pb.h"
#include "server/onnx/qdq_export.h"

namespace qcal::server {

// The per-channel axis of a quantizable node's weight (input 1), i.e. its output channels except
// where a runtime says otherwise:
//   Conv           [out, in/group, k...]        axis 0
//   ConvTranspose  [in, out/group, k...]        axis 0 for kTensorRT (pytorch-quantization's
//                                               descriptor, TensorRT), 1 for kOnnxRuntime
//   Gemm transB=1  [out, in]                    axis 0
//   Gemm transB=0  [in, out]                    axis 1
//   MatMul         [..., in, out]               the last axis
// Errors: INVALID_ARGUMENT when the node is none of these or the weight rank does not fit it
// (a MatMul weight of rank < 2, a Gemm weight of rank != 2, a conv weight of rank < 3).
absl::StatusOr<int> WeightChannelAxis(const onnx::NodeProto& node, int weight_rank,
                                      QdqTarget target);

// max |w| over every axis but `axis`: pytorch-quantization's per-channel max (reduce_amax with
// keepdims over the other axes), one float per index of `axis`.
// Errors: INVALID_ARGUMENT naming the tensor when it is not a float32 tensor with its data in the
// model (external data, other dtypes), its data size does not match its dims, `axis` is out of
// range, or a value is NaN or +-Inf (naming the channel too).
absl::StatusOr<std::vector<float>> PerChannelAbsMax(const onnx::TensorProto& weight, int axis);

}  // namespace qcal::server

#endif  // QCAL_SERVER_ONNX_WEIGHT_AMAX_H_
