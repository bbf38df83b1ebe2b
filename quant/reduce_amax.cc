#include "quant/reduce_amax.h"

#include <ATen/ops/amax.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "quant/errors.h"

namespace qcal::quant {

std::vector<int64_t> AmaxShape(c10::IntArrayRef sizes, const std::vector<int64_t>& kept_axes) {
  std::vector<int64_t> shape(sizes.size(), 1);
  int64_t count = 1;
  for (int64_t a : kept_axes) {
    shape[a] = sizes[a];
    count *= sizes[a];
  }
  if (count == 1) shape.clear();
  return shape;
}

at::Tensor reduce_amax(const at::Tensor& inputs, const QuantAxis& axis) {
  const std::vector<int64_t> kept = axis.Resolve(inputs.dim());
  if (inputs.numel() == 0) {
    ThrowRuntimeError(absl::StrCat("the dynamic amax of an empty tensor (shape ",
                                   c10::str(inputs.sizes()), ") is undefined; set an amax"));
  }
  std::vector<int64_t> reduce;
  for (int64_t d = 0; d < inputs.dim(); ++d) {
    if (std::find(kept.begin(), kept.end(), d) == kept.end()) reduce.push_back(d);
  }
  const at::Tensor abs = inputs.detach().abs();
  at::Tensor amax = reduce.empty() ? abs : at::amax(abs, reduce, /*keepdim=*/true);
  return amax.reshape(AmaxShape(inputs.sizes(), kept));
}

}  // namespace qcal::quant
