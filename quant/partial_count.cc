#include "quant/partial_count.h"

#include <ATen/ops/abs.h>
#include <ATen/ops/amax.h>
#include <ATen/ops/bincount.h>
#include <ATen/ops/floor.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/masked_select.h>
#include <ATen/ops/max.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/ne.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros_like.h>

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/mergeable_histogram.h"
#include "quant/errors.h"

namespace qcal::quant {
namespace {

void CountHistogram(const at::Tensor& magnitudes, const PartialTarget& target,
                    v1::PartialState& partial) {
  at::Tensor values = magnitudes.reshape({-1});
  values = at::masked_select(values, at::isfinite(values));
  partial.set_nonfinite(partial.elements() - values.numel());
  if (target.skip_zeros) values = at::masked_select(values, at::ne(values, 0));
  const float abs_max = values.numel() > 0 ? values.max().item<float>() : 0.0f;
  v1::MergeableHistogram* histogram = partial.mutable_histogram();
  if (abs_max == 0.0f) {  // canonical empty form: the zeros counted, no bins
    histogram->set_zeros(static_cast<uint64_t>(values.numel()));
    return;
  }
  const int k = kernels::MergeableExponent(abs_max, target.num_bins);
  const int64_t bins = kernels::MergeableBinCount(abs_max, k);
  const at::Tensor index =
      at::floor(at::mul(values.to(at::kDouble), std::ldexp(1.0, -k))).to(at::kLong);
  const at::Tensor counts = at::bincount(index, {}, bins).to(at::kCPU).contiguous();
  const int64_t* data = counts.data_ptr<int64_t>();
  histogram->set_exponent(k);
  histogram->mutable_counts()->Reserve(static_cast<int>(bins));
  for (int64_t i = 0; i < bins; ++i) histogram->add_counts(static_cast<uint64_t>(data[i]));
  histogram->set_abs_max(abs_max);
}

void CountMax(const at::Tensor& magnitudes, const PartialTarget& target,
              v1::PartialState& partial) {
  const at::Tensor finite = at::isfinite(magnitudes);
  partial.set_nonfinite(partial.elements() - finite.sum().item<int64_t>());
  const at::Tensor values = at::where(finite, magnitudes, at::zeros_like(magnitudes));
  at::Tensor amax;
  v1::MaxState* max = partial.mutable_max();
  if (!target.axis.has_value()) {
    amax = values.max().reshape({1});
  } else {
    const int64_t rank = values.dim();
    const int64_t axis = *target.axis;
    if (axis < -rank || axis >= rank) {
      ThrowValueError(absl::StrCat("axis ", axis, " is out of range for a tensor of rank ", rank));
    }
    const int64_t kept = axis < 0 ? axis + rank : axis;
    std::vector<int64_t> others;
    for (int64_t d = 0; d < rank; ++d) {
      if (d != kept) others.push_back(d);
    }
    amax = others.empty() ? values : at::amax(values, others);
    max->set_axis(*target.axis);
  }
  const at::Tensor host = amax.reshape({-1}).to(at::kCPU).contiguous();
  const float* data = host.data_ptr<float>();
  max->mutable_amax()->Assign(data, data + host.numel());
}

}  // namespace

v1::PartialState CountPartialWithAten(const at::Tensor& tensor, const PartialTarget& target) {
  if (tensor.numel() == 0)
    ThrowValueError("an empty tensor (a dimension of 0) has nothing to count");
  const at::Tensor magnitudes = at::abs(tensor.detach().to(at::kFloat));
  v1::PartialState partial;
  partial.set_batches(1);
  partial.set_elements(tensor.numel());
  if (target.histogram) {
    CountHistogram(magnitudes, target, partial);
  } else {
    CountMax(magnitudes, target, partial);
  }
  return partial;
}

}  // namespace qcal::quant
