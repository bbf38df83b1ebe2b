// The amax of one tensor by itself: pytorch-quantization's quant_utils.reduce_amax as
// TensorQuantizer uses it when no amax is set ("dynamic" amax), and the amax shape every
// calibrator reports.
//
//   reduce_amax(x, QuantAxis());    // max |x|, a 0-d tensor
//   reduce_amax(w, QuantAxis(0));   // [K, 1, 1, 1] for a KCRS weight
#ifndef QCAL_QUANT_REDUCE_AMAX_H_
#define QCAL_QUANT_REDUCE_AMAX_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "quant/quant_descriptor.h"

namespace qcal::quant {

// max |x| over every axis but the kept ones, keeping size-1 dimensions (torch.amax with
// keepdim); an amax of one element is squeezed to 0-d, as the reference does. NaN propagates
// (the reference's max); same dtype and device as inputs, no gradient.
// Errors: c10::ValueError for an axis outside [-rank, rank) (the reference silently reduces
// every axis, and ignores negative axes here); c10::Error for an empty input (the reference's
// max() of an empty tensor).
at::Tensor reduce_amax(const at::Tensor& inputs, const QuantAxis& axis);

// The shape of an amax for a tensor of shape `sizes` keeping `kept_axes` (resolved, >= 0): the
// kept sizes at their places and 1 elsewhere, or {} (0-d) when that holds one element.
std::vector<int64_t> AmaxShape(c10::IntArrayRef sizes, const std::vector<int64_t>& kept_axes);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_REDUCE_AMAX_H_
