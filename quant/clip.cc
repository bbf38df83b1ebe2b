#include "quant/clip.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/minimum.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/custom_function.h>

namespace qcal::quant {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// grad summed where `mask` holds, shaped like `bound`.
at::Tensor BoundGrad(const at::Tensor& mask, const at::Tensor& grad, const at::Tensor& bound) {
  return at::where(mask, grad, at::zeros_like(grad)).sum().reshape(bound.sizes());
}

struct ClipFunction : public torch::autograd::Function<ClipFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& inputs,
                            const at::Tensor& clip_value_min, const at::Tensor& clip_value_max) {
    ctx->save_for_backward({inputs, clip_value_min, clip_value_max});
    return at::maximum(at::minimum(inputs, clip_value_max), clip_value_min);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& min = saved[1];
    const at::Tensor& max = saved[2];
    const at::Tensor& grad = grad_outputs[0];
    const at::Tensor inside = x.gt(min).logical_and(x.lt(max));
    // A multiplication by the mask, as the reference (a negative gradient outside gives -0.0).
    at::Tensor grad_input = grad * inside.to(grad.scalar_type());
    if (grad_input.sizes() != x.sizes()) grad_input = grad_input.sum_to_size(x.sizes());
    at::Tensor grad_min, grad_max;
    if (min.requires_grad()) grad_min = BoundGrad(x.le(min), grad, min);
    if (max.requires_grad()) grad_max = BoundGrad(x.ge(max), grad, max);
    return {grad_input, grad_min, grad_max};
  }
};

}  // namespace

at::Tensor clip(const at::Tensor& inputs, const at::Tensor& clip_value_min,
                const at::Tensor& clip_value_max) {
  return ClipFunction::apply(inputs, clip_value_min, clip_value_max);
}

ClipImpl::ClipImpl(double clip_value_min, double clip_value_max, bool learn_min, bool learn_max) {
  const auto options = at::TensorOptions().dtype(at::kFloat);
  clip_value_min_ = at::scalar_tensor(clip_value_min, options);
  clip_value_max_ = at::scalar_tensor(clip_value_max, options);
  if (learn_min) clip_value_min_ = register_parameter("clip_value_min", clip_value_min_);
  if (learn_max) clip_value_max_ = register_parameter("clip_value_max", clip_value_max_);
}

at::Tensor ClipImpl::forward(const at::Tensor& inputs) {
  // Fixed bounds follow the inputs' device and dtype (parameters move with the module).
  const at::Tensor min = clip_value_min_.requires_grad()
                             ? clip_value_min_
                             : clip_value_min_.to(inputs.device(), inputs.scalar_type());
  const at::Tensor max = clip_value_max_.requires_grad()
                             ? clip_value_max_
                             : clip_value_max_.to(inputs.device(), inputs.scalar_type());
  return clip(inputs, min, max);
}

void ClipImpl::pretty_print(std::ostream& stream) const { stream << "Clip()"; }

}  // namespace qcal::quant
