#include "quant/tensor_quant.h"

#include <ATen/ExpandUtils.h>
#include <ATen/ops/abs.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/div.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/round.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros_like.h>
#include <torch/csrc/autograd/custom_function.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/fake_quant.h"
#include "kernels/quant_bound.h"
#include "quant/errors.h"

namespace qcal::quant {
namespace internal {
namespace {

// Values where amax is at most this quantize to 0 (the reference's "minimum of fp16").
constexpr double kAmaxEpsilon = 1.0 / (1 << 24);

void CheckFloating(const at::Tensor& t, const char* what) {
  if (!t.defined()) ThrowValueError(absl::StrCat(what, " is an undefined tensor"));
  if (!at::isFloatingType(t.scalar_type())) {
    ThrowTypeError(absl::StrCat(what, " must be a floating-point tensor, not ",
                                c10::toString(t.scalar_type())));
  }
}

// A CPU float32 tensor that owns a kernels::Tensor's storage (no copy).
at::Tensor Adopt(kernels::Tensor t) {
  if (t.data.empty()) return at::empty(t.shape, at::TensorOptions().dtype(at::kFloat));
  auto owner = std::make_unique<kernels::Tensor>(std::move(t));
  float* data = owner->data.data();
  const std::vector<int64_t> shape = owner->shape;
  kernels::Tensor* raw = owner.release();
  return at::from_blob(
      data, shape, [raw](void*) { delete raw; }, at::TensorOptions().dtype(at::kFloat));
}

}  // namespace

namespace {

// kernels' TensorQuant (and FakeTensorQuant when `fake`) on CPU float32 contiguous tensors.
QuantOutputs RunKernels(const at::Tensor& x, const at::Tensor& a,
                        const kernels::QuantParams& params, bool fake) {
  const kernels::TensorView xv{{x.data_ptr<float>(), static_cast<size_t>(x.numel())}, x.sizes()};
  const kernels::TensorView av{{a.data_ptr<float>(), static_cast<size_t>(a.numel())}, a.sizes()};
  absl::StatusOr<kernels::QuantizedTensor> q = kernels::TensorQuant(xv, av, params);
  ThrowIfError(q.status(), "tensor_quant");
  QuantOutputs out;
  if (fake) {
    absl::StatusOr<kernels::Tensor> f = kernels::FakeTensorQuant(xv, av, params);
    ThrowIfError(f.status(), "fake_tensor_quant");
    out.fake = Adopt(*std::move(f));
  }
  out.quantized = Adopt(std::move(q->quantized));
  out.scale = Adopt(std::move(q->scale));
  return out;
}

}  // namespace

QuantOutputs QuantForwardKernels(const at::Tensor& inputs, const at::Tensor& amax, int num_bits,
                                 bool is_unsigned, bool narrow_range, bool fake) {
  const at::Tensor x = inputs.detach().contiguous();
  const at::Tensor a = amax.detach().contiguous();
  if (x.scalar_type() != at::kFloat || a.scalar_type() != at::kFloat || !x.device().is_cpu() ||
      !a.device().is_cpu()) {
    ThrowValueError("QuantForwardKernels takes CPU float32 inputs and amax");
  }
  return RunKernels(x, a, kernels::QuantParams{num_bits, is_unsigned, narrow_range}, fake);
}

QuantOutputs QuantForwardFp8(const at::Tensor& inputs, const at::Tensor& amax, bool fake) {
  CheckFloating(inputs, "inputs");
  CheckFloating(amax, "amax");
  // No float8 dtype in torch 1.13 and one rounding rule for all: CPU float32 through kernels/.
  const at::Tensor x = inputs.detach().to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor a = amax.detach().to(at::kCPU, at::kFloat).contiguous();
  QuantOutputs out =
      RunKernels(x, a, kernels::QuantParams{.format = kernels::QuantFormat::kFp8E4M3}, fake);
  const auto back = [&](const at::Tensor& t) {
    return t.to(inputs.device(), inputs.scalar_type());
  };
  out.quantized = back(out.quantized);
  out.scale = back(out.scale);
  if (fake) out.fake = back(out.fake);
  return out;
}

QuantOutputs QuantForwardTorch(const at::Tensor& inputs, const at::Tensor& amax, int num_bits,
                               bool is_unsigned, bool narrow_range, bool fake) {
  const absl::StatusOr<float> bound = kernels::QuantBound(num_bits, is_unsigned);
  ThrowIfError(bound.status(), "tensor_quant");
  at::Tensor x = inputs.detach();
  at::Tensor a = amax.detach();
  const at::ScalarType input_dtype = x.scalar_type();
  // Computation in float32 at least, as the reference (float16 would overflow).
  if (input_dtype == at::kHalf || input_dtype == at::kBFloat16) x = x.to(at::kFloat);
  if (a.scalar_type() == at::kHalf || a.scalar_type() == at::kBFloat16) a = a.to(at::kFloat);
  if (a.numel() == 0) ThrowValueError("tensor_quant: amax is empty");
  if (is_unsigned && x.numel() > 0 && x.min().item<double>() < 0.0) {
    ThrowValueError("tensor_quant: negative values encountered in unsigned quantization");
  }
  if (a.min().item<double>() < 0.0) ThrowValueError("tensor_quant: negative values in amax");
  try {
    (void)at::infer_size(x.sizes(), a.sizes());
  } catch (const c10::Error& e) {
    ThrowValueError(absl::StrCat("tensor_quant: amax of shape ", c10::str(a.sizes()),
                                 " does not broadcast against inputs of shape ",
                                 c10::str(x.sizes())));
  }
  const double max_bound = *bound;
  const double min_bound = is_unsigned ? 0.0 : (narrow_range ? -max_bound : -max_bound - 1.0);
  // A 0-d float32 tensor divided by amax: the reference's division (not a reciprocal).
  const at::Tensor scale = at::div(
      at::scalar_tensor(max_bound, at::TensorOptions().dtype(at::kFloat).device(a.device())), a);
  const at::Tensor zero_amax = a.le(kAmaxEpsilon);
  const at::Tensor rounding_scale = at::where(zero_amax, at::zeros_like(scale), scale);
  QuantOutputs out;
  out.quantized = at::clamp(at::round(at::mul(x, rounding_scale)), min_bound, max_bound);
  out.scale = at::where(zero_amax, at::ones_like(scale), scale);
  if (fake) out.fake = at::div(out.quantized, out.scale).to(input_dtype);
  out.quantized = out.quantized.to(input_dtype);
  out.scale = out.scale.to(input_dtype);
  return out;
}

}  // namespace internal

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool OnKernels(const at::Tensor& inputs, const at::Tensor& amax) {
  return inputs.scalar_type() == at::kFloat && amax.scalar_type() == at::kFloat &&
         inputs.device().is_cpu() && amax.device().is_cpu();
}

internal::QuantOutputs Forward(const at::Tensor& inputs, const at::Tensor& amax, int64_t num_bits,
                               bool is_unsigned, bool narrow_range, bool fake) {
  internal::CheckFloating(inputs, "inputs");
  internal::CheckFloating(amax, "amax");
  const int bits = static_cast<int>(num_bits);
  return OnKernels(inputs, amax)
             ? internal::QuantForwardKernels(inputs, amax, bits, is_unsigned, narrow_range, fake)
             : internal::QuantForwardTorch(inputs, amax, bits, is_unsigned, narrow_range, fake);
}

// The straight-through estimator: grad_output where |x| <= amax, summed to inputs' shape.
at::Tensor StraightThrough(const at::Tensor& inputs, const at::Tensor& amax,
                           const at::Tensor& grad_output) {
  at::Tensor grad = at::where(inputs.abs().le(amax), grad_output, at::zeros_like(grad_output));
  if (grad.sizes() != inputs.sizes()) grad = grad.sum_to_size(inputs.sizes());
  return grad;
}

struct FakeTensorQuantFunction : public torch::autograd::Function<FakeTensorQuantFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& inputs, const at::Tensor& amax,
                            int64_t num_bits, bool is_unsigned, bool narrow_range) {
    ctx->save_for_backward({inputs, amax});
    return Forward(inputs, amax, num_bits, is_unsigned, narrow_range, /*fake=*/true).fake;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    return {StraightThrough(saved[0], saved[1], grad_outputs[0]), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

struct TensorQuantFunction : public torch::autograd::Function<TensorQuantFunction> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& inputs,
                               const at::Tensor& amax, int64_t num_bits, bool is_unsigned,
                               bool narrow_range) {
    ctx->save_for_backward({inputs, amax});
    internal::QuantOutputs out =
        Forward(inputs, amax, num_bits, is_unsigned, narrow_range, /*fake=*/false);
    ctx->mark_non_differentiable({out.scale});
    return {out.quantized, out.scale};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    return {StraightThrough(saved[0], saved[1], grad_outputs[0]), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

struct FakeTensorQuantFp8Function : public torch::autograd::Function<FakeTensorQuantFp8Function> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& inputs,
                            const at::Tensor& amax) {
    ctx->save_for_backward({inputs, amax});
    return internal::QuantForwardFp8(inputs, amax, /*fake=*/true).fake;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    return {StraightThrough(saved[0], saved[1], grad_outputs[0]), at::Tensor()};
  }
};

struct TensorQuantFp8Function : public torch::autograd::Function<TensorQuantFp8Function> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& inputs,
                               const at::Tensor& amax) {
    ctx->save_for_backward({inputs, amax});
    internal::QuantOutputs out = internal::QuantForwardFp8(inputs, amax, /*fake=*/false);
    ctx->mark_non_differentiable({out.scale});
    return {out.quantized, out.scale};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    return {StraightThrough(saved[0], saved[1], grad_outputs[0]), at::Tensor()};
  }
};

}  // namespace

std::tuple<at::Tensor, at::Tensor> tensor_quant(const at::Tensor& inputs, const at::Tensor& amax,
                                                int num_bits, bool is_unsigned, bool narrow_range) {
  variable_list out =
      TensorQuantFunction::apply(inputs, amax, int64_t{num_bits}, is_unsigned, narrow_range);
  return {out[0], out[1]};
}

at::Tensor fake_tensor_quant(const at::Tensor& inputs, const at::Tensor& amax, int num_bits,
                             bool is_unsigned, bool narrow_range) {
  return FakeTensorQuantFunction::apply(inputs, amax, int64_t{num_bits}, is_unsigned, narrow_range);
}

std::tuple<at::Tensor, at::Tensor> tensor_quant_fp8(const at::Tensor& inputs,
                                                    const at::Tensor& amax) {
  variable_list out = TensorQuantFp8Function::apply(inputs, amax);
  return {out[0], out[1]};
}

at::Tensor fake_tensor_quant_fp8(const at::Tensor& inputs, const at::Tensor& amax) {
  return FakeTensorQuantFp8Function::apply(inputs, amax);
}

}  // namespace qcal::quant
