#include "quant/tensor_quantizer.h"

#include <ATen/ops/full.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/scalar_tensor.h>
#include <torch/serialize/input-archive.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "quant/cpu_float.h"
#include "quant/errors.h"
#include "quant/python_format.h"
#include "quant/reduce_amax.h"
#include "quant/tensor_format.h"
#include "quant/tensor_quant.h"

namespace qcal::quant {
namespace {

constexpr const char* kAmaxBuffer = "_amax";

void CheckAmaxValues(const at::Tensor& value) {
  if (!value.defined()) ThrowValueError("amax is an undefined tensor");
  if (!at::isFloatingType(value.scalar_type())) {
    ThrowTypeError(absl::StrCat("amax must be a floating-point tensor, not ",
                                c10::toString(value.scalar_type())));
  }
  if (value.numel() > 0 && value.lt(0).any().item<bool>()) {
    ThrowValueError(absl::StrCat("amax must be >= 0, got ", internal::TorchFormat(value)));
  }
}

}  // namespace

TensorQuantizerImpl::TensorQuantizerImpl(QuantDescriptor desc, bool disabled, bool if_quant,
                                         bool if_clip, bool if_calib)
    : desc_(std::move(desc)), disabled_(disabled), if_quant_(if_quant), if_calib_(if_calib) {
  if (desc_.fake_quant()) scale_ = at::scalar_tensor(1.0, at::TensorOptions().dtype(at::kDouble));
  if (desc_.amax().has_value()) {
    amax_ = register_buffer(kAmaxBuffer,
                            internal::FloatTensor(desc_.amax()->values, desc_.amax()->shape));
  }
  if (desc_.learn_amax()) {
    double init_amax = 1.0;
    if (desc_.amax().has_value()) {
      if (desc_.amax()->values.size() != 1) {
        ThrowValueError(
            "clip_value_min/clip_value_max must be scalar for initializing a learnable range: "
            "learn_amax takes a single amax");
      }
      init_amax = desc_.amax()->values[0];
    }
    clip_ = register_module("clip", Clip(-init_amax, init_amax, /*learn_min=*/true,
                                         /*learn_max=*/true));
    if_clip_ = true;
  }
  if (if_clip) enable_clip();
  calibrator_ = MakeCalibrator(desc_);
}

void TensorQuantizerImpl::enable_calib() {
  if (calibrator_ == nullptr) ThrowRuntimeError("Calibrator was not created.");
  if_calib_ = true;
}

void TensorQuantizerImpl::enable_clip() {
  if (!desc_.learn_amax()) ThrowValueError("learn_amax is False. Cannot enable clip.");
  if_clip_ = true;
}

std::optional<at::Tensor> TensorQuantizerImpl::amax() const {
  if (!amax_.defined()) return std::nullopt;
  return amax_;
}

std::optional<at::Tensor> TensorQuantizerImpl::scale() const {
  if (!scale_.defined()) return std::nullopt;
  return scale_;
}

void TensorQuantizerImpl::set_amax(const at::Tensor& value) {
  CheckAmaxValues(value);
  const at::Tensor v = value.detach();
  if (!amax_.defined()) {
    amax_ = register_buffer(kAmaxBuffer, v.to(at::kCPU, at::kFloat).clone());
    return;
  }
  if (v.sizes() != amax_.sizes()) {
    ThrowRuntimeError(absl::StrCat("Changing shape when setting amax is not allowed: ",
                                   c10::str(amax_.sizes()), " -> ", c10::str(v.sizes())));
  }
  amax_.copy_(v);
}

void TensorQuantizerImpl::set_amax(double value) {
  set_amax(at::scalar_tensor(value, at::TensorOptions().dtype(at::kFloat)));
}

void TensorQuantizerImpl::set_amax(const std::vector<float>& values) {
  set_amax(internal::FloatTensor(values, {static_cast<int64_t>(values.size())}));
}

void TensorQuantizerImpl::load_calib_amax(const CalibAmaxArgs& args, bool strict) {
  if (calibrator_ == nullptr) ThrowRuntimeError("Calibrator not created.");
  std::optional<at::Tensor> calib_amax = calibrator_->compute_amax(args);
  if (!calib_amax.has_value()) {
    if (strict) {
      ThrowRuntimeError(absl::StrCat(
          "Calibrator returned None. This usually happens when calibrator hasn't seen any "
          "tensor (",
          calibrator_->name(),
          "). Passing strict=false to load_calib_amax() sets "
          "amax to NaN instead."));
    }
    calib_amax = at::scalar_tensor(std::numeric_limits<double>::quiet_NaN(),
                                   at::TensorOptions().dtype(at::kFloat));
  }
  if (!amax_.defined()) {
    amax_ = register_buffer(kAmaxBuffer, *calib_amax);
  } else {
    // As the reference: copied into the existing buffer (broadcast if need be).
    amax_.copy_(*calib_amax);
  }
}

void TensorQuantizerImpl::init_learn_amax() {
  if (!desc_.learn_amax()) ThrowRuntimeError("Called init_learn_amax with learn_amax=False.");
  if (!amax_.defined()) ThrowRuntimeError("init_learn_amax: no amax to start from");
  const at::Tensor init = amax_.max().detach();
  torch::NoGradGuard no_grad;
  clip_->clip_value_min().copy_(init.neg());
  clip_->clip_value_max().copy_(init);
}

at::Tensor TensorQuantizerImpl::GetAmax(const at::Tensor& inputs) const {
  at::Tensor amax = amax_.defined() ? amax_ : reduce_amax(inputs, desc_.axis());
  if (desc_.scale_amax().has_value()) amax = amax.detach().mul(*desc_.scale_amax());
  return amax;
}

at::Tensor TensorQuantizerImpl::QuantForward(const at::Tensor& inputs) {
  at::Tensor x = inputs;
  at::Tensor amax;
  if (desc_.learn_amax()) {
    x = clip_(inputs);
    amax = at::maximum(clip_->clip_value_min().neg(), clip_->clip_value_max()).detach();
  } else {
    amax = GetAmax(inputs);
  }
  if (desc_.format() == kernels::QuantFormat::kFp8E4M3) {
    if (desc_.fake_quant()) return fake_tensor_quant_fp8(x, amax);
    auto [outputs, scale] = tensor_quant_fp8(x, amax);
    scale_ = scale.detach();
    return outputs;
  }
  if (desc_.fake_quant()) {
    return fake_tensor_quant(x, amax, desc_.num_bits(), desc_.is_unsigned(), desc_.narrow_range());
  }
  auto [outputs, scale] = tensor_quant(x, amax, desc_.num_bits(), desc_.is_unsigned());
  scale_ = scale.detach();
  return outputs;
}

at::Tensor TensorQuantizerImpl::forward(const at::Tensor& inputs) {
  if (disabled_) return inputs;
  at::Tensor outputs = inputs;
  if (if_calib_) {
    if (calibrator_ == nullptr) ThrowRuntimeError("Calibrator was not created.");
    calibrator_->collect(inputs);
  }
  if (if_clip_) {
    if (!desc_.learn_amax()) ThrowRuntimeError("Clip without learning amax is not implemented.");
    outputs = clip_(inputs);
  }
  if (if_quant_) outputs = QuantForward(inputs);
  return outputs;
}

std::string TensorQuantizerImpl::ExtraRepr(bool python_scale) const {
  if (disabled_) return "disabled";
  std::string s = absl::StrCat(desc_.is_unsigned() ? "unsigned " : "", desc_.num_bits_str(), "bit");
  if (desc_.narrow_range()) absl::StrAppend(&s, " narrow");
  if (desc_.fake_quant()) absl::StrAppend(&s, " fake");
  absl::StrAppend(
      &s, desc_.axis().per_tensor() ? " per-tensor" : absl::StrCat(" axis=", desc_.axis().str()));
  std::string amax = "dynamic";
  if (amax_.defined()) {
    if (amax_.numel() == 0) {
      amax = "[]";
    } else if (amax_.numel() == 1) {
      amax = internal::PyFixed(amax_.item<double>(), 4);
    } else {
      amax =
          absl::StrCat("[", internal::PyFixed(amax_.min().item<double>(), 4), ", ",
                       internal::PyFixed(amax_.max().item<double>(), 4), "](", amax_.numel(), ")");
    }
  }
  absl::StrAppend(&s, " amax=", amax);
  if (desc_.scale_amax().has_value()) {
    absl::StrAppend(&s, " *", internal::PyFloatRepr(*desc_.scale_amax()));
  }
  if (desc_.learn_amax()) absl::StrAppend(&s, " learned");
  if (calibrator_ != nullptr) absl::StrAppend(&s, " calibrator=", calibrator_->name());
  if (scale_.defined()) {
    std::string scale;
    if (scale_.numel() == 1 || python_scale) {
      scale = internal::TorchFormat(scale_);
    } else {
      scale = absl::StrCat("[", internal::PyFixed(scale_.min().item<double>(), 4), ", ",
                           internal::PyFixed(scale_.max().item<double>(), 4), "](", scale_.numel(),
                           ")");
    }
    absl::StrAppend(&s, " scale=", scale);
  }
  if (if_quant_) absl::StrAppend(&s, " quant");
  if (if_clip_) absl::StrAppend(&s, " clip");
  if (if_calib_) absl::StrAppend(&s, " calib");
  return s;
}

std::string TensorQuantizerImpl::extra_repr() const { return ExtraRepr(/*python_scale=*/true); }

std::string TensorQuantizerImpl::repr() const {
  // torch.nn.Module.__repr__: one line unless the extra repr spans lines or there are children.
  const std::string extra = extra_repr();
  const bool has_clip = !clip_.is_empty();
  if (extra.find('\n') == std::string::npos && !has_clip) {
    return absl::StrCat("TensorQuantizer(", extra, ")");
  }
  std::vector<std::string> lines = absl::StrSplit(extra, '\n');
  if (has_clip) lines.push_back("(clip): Clip()");
  return absl::StrCat("TensorQuantizer(\n  ", absl::StrJoin(lines, "\n  "), "\n)");
}

std::string TensorQuantizerImpl::str() const {
  return absl::StrCat("TensorQuantizer(", ExtraRepr(/*python_scale=*/false), ")");
}

void TensorQuantizerImpl::pretty_print(std::ostream& stream) const { stream << str(); }

void TensorQuantizerImpl::load(torch::serialize::InputArchive& archive) {
  torch::nn::Module::load(archive);
  if (amax_.defined()) return;
  at::Tensor saved;
  if (archive.try_read(kAmaxBuffer, saved, /*is_buffer=*/true)) {
    amax_ = register_buffer(kAmaxBuffer, saved);
  }
}

}  // namespace qcal::quant
