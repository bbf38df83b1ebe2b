// A tensor's pre-aggregated state (qcal/partial_state.h) counted with ATen ops on the tensor's own
// device, so a CUDA tensor is counted on its GPU and only the counts cross to the host. Bit for
// bit the state the CPU kernels (and so the server) compute: |x| in float32 (x.to(kFloat) widens
// float16/bfloat16 exactly and rounds float64 to nearest, as kernels/dtype.h does), NaN and
// +-inf counted in `nonfinite` and left out, k = kernels::MergeableExponent of the finite max,
// bins floor(|x| * 2^-k) in float64 (exact: a power-of-two scaling of a float32), at::bincount.
// Device-agnostic: on CPU tensors it must equal CountHistogramPartial / CountMaxPartial, which
// the tests check.
#ifndef QCAL_QUANT_PARTIAL_COUNT_H_
#define QCAL_QUANT_PARTIAL_COUNT_H_

#include <ATen/core/Tensor.h>

#include "qcal/partial_state.h"
#include "qcal/v1/calibration.pb.h"

namespace qcal::quant {

// `tensor`'s partial state for `target` (a floating tensor, at least one element). c10::ValueError
// for an empty tensor or an axis outside the rank.
v1::PartialState CountPartialWithAten(const at::Tensor& tensor, const PartialTarget& target);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_PARTIAL_COUNT_H_
