// Moving tensors between LibTorch and kernels/: a batch as contiguous CPU float32, and float
// values as a CPU float32 tensor. Internal to quant/.
#ifndef QCAL_QUANT_CPU_FLOAT_H_
#define QCAL_QUANT_CPU_FLOAT_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <span>
#include <vector>

namespace qcal::quant::internal {

// `t` detached, as contiguous CPU float32 (a copy only when needed). c10::TypeError unless
// `t` is a defined floating tensor; `what` names it in the message.
at::Tensor ContiguousCpuFloat(const at::Tensor& t, const char* what);

std::span<const float> FloatSpan(const at::Tensor& cpu_float);

// A new CPU float32 tensor holding `values` with shape `shape`.
at::Tensor FloatTensor(std::span<const float> values, const std::vector<int64_t>& shape);

}  // namespace qcal::quant::internal

#endif  // QCAL_QUANT_CPU_FLOAT_H_
