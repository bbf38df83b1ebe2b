#include "quant/quant_descriptor.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/quant_bound.h"
#include "quant/errors.h"
#include "quant/python_format.h"

namespace qcal::quant {

QuantAxis QuantAxis::Tuple(std::vector<int> axes) {
  QuantAxis axis;
  axis.axes_ = std::move(axes);
  axis.is_tuple_ = true;
  axis.per_tensor_ = false;
  return axis;
}

std::vector<int64_t> QuantAxis::Resolve(int64_t rank) const {
  std::vector<int64_t> resolved;
  for (int axis : axes_) {
    if (axis < -rank || axis >= rank) {
      ThrowValueError(absl::StrCat("axis ", axis, " is out of range for a tensor of rank ", rank,
                                   " (valid: ", -rank, "..", rank - 1, ")"));
    }
    const int64_t a = axis < 0 ? axis + rank : axis;
    if (std::find(resolved.begin(), resolved.end(), a) != resolved.end()) {
      ThrowValueError(absl::StrCat("axis ", str(), " names dimension ", a, " twice"));
    }
    resolved.push_back(a);
  }
  return resolved;
}

std::string QuantAxis::str() const {
  if (per_tensor_) return "None";
  if (!is_tuple_) return std::to_string(axes_[0]);
  if (axes_.size() == 1) return absl::StrCat("(", axes_[0], ",)");
  return absl::StrCat("(", absl::StrJoin(axes_, ", "), ")");
}

QuantDescriptor::QuantDescriptor(Options options) : options_(std::move(options)) {
  const Options& o = options_;
  if (o.num_bits < 0) {
    ThrowValueError(absl::StrCat("num_bits must be > 0, not ", o.num_bits, "."));
  }
  ThrowIfError(kernels::QuantBound(o.num_bits, o.is_unsigned).status(), "QuantDescriptor");
  if (o.format == kernels::QuantFormat::kFp8E4M3 && (o.num_bits != 8 || o.is_unsigned)) {
    ThrowValueError(
        absl::StrCat("QuantDescriptor: FP8 E4M3 (num_bits=(4, 3)) is 8-bit and signed, ",
                     "got num_bits ", o.num_bits, o.is_unsigned ? " unsigned" : ""));
  }
  if (o.axis.is_tuple() && o.axis.axes().empty()) {
    ThrowValueError("QuantDescriptor: axis is an empty tuple; leave it unset for per-tensor");
  }
  if (std::set<int>(o.axis.axes().begin(), o.axis.axes().end()).size() != o.axis.axes().size()) {
    ThrowValueError(absl::StrCat("QuantDescriptor: axis ", o.axis.str(), " repeats an axis"));
  }
  if (o.learn_amax && !o.axis.per_tensor()) {
    ThrowTypeError(absl::StrCat("axis is ignored and must be None when learn_amax is true, got ",
                                o.axis.str(), "."));
  }
  if (o.amax.has_value()) {
    const int64_t count = std::accumulate(o.amax->shape.begin(), o.amax->shape.end(), int64_t{1},
                                          std::multiplies<>());
    if (std::any_of(o.amax->shape.begin(), o.amax->shape.end(), [](int64_t d) { return d < 0; }) ||
        count != static_cast<int64_t>(o.amax->values.size())) {
      ThrowValueError(absl::StrCat("QuantDescriptor: amax has ", o.amax->values.size(),
                                   " values for shape [", absl::StrJoin(o.amax->shape, ", "), "]"));
    }
    for (float v : o.amax->values) {
      if (!std::isfinite(v) || v < 0.0f) {
        ThrowValueError(absl::StrCat("QuantDescriptor: amax must be finite and >= 0, got ",
                                     internal::PyFloatRepr(v)));
      }
    }
  }
  if (o.scale_amax.has_value() && !(std::isfinite(*o.scale_amax) && *o.scale_amax > 0.0)) {
    ThrowValueError(absl::StrCat("QuantDescriptor: scale_amax must be finite and > 0, got ",
                                 internal::PyFloatRepr(*o.scale_amax)));
  }
  if (o.calib_method != "max" && o.calib_method != "histogram") {
    ThrowValueError(absl::StrCat("QuantDescriptor: calib_method must be \"max\" or \"histogram\", ",
                                 "not \"", o.calib_method, "\""));
  }
}

std::string QuantDescriptor::num_bits_str() const {
  return options_.format == kernels::QuantFormat::kFp8E4M3 ? "(4, 3)"
                                                           : std::to_string(options_.num_bits);
}

int64_t QuantDescriptor::bound() const {
  return (int64_t{1} << (options_.num_bits - 1 + (options_.is_unsigned ? 1 : 0))) - 1;
}

std::string QuantDescriptor::str() const {
  const Options& o = options_;
  std::string s = o.name.has_value() ? absl::StrCat(*o.name, ": ") : "QuantDescriptor";
  absl::StrAppend(&s, "(", o.is_unsigned ? "unsigned " : "", num_bits_str(), "bit");
  absl::StrAppend(&s, o.fake_quant ? " fake" : " real");
  // The reference formats a missing axis as " per-tensor" after "axis=".
  absl::StrAppend(&s, " axis=", o.axis.per_tensor() ? " per-tensor" : o.axis.str());
  if (o.amax.has_value()) {
    absl::StrAppend(&s, " amax=", internal::NumpyFloat32Str(o.amax->values, o.amax->shape));
    // The reference prints " full_range" with every amax; a narrow descriptor says so instead.
    absl::StrAppend(&s, o.narrow_range ? " narrow_range" : " full_range");
  }
  if (o.learn_amax) absl::StrAppend(&s, " learn_amax");
  if (o.scale_amax.has_value()) {
    absl::StrAppend(&s, " scale_amax=", internal::PyFloatRepr(*o.scale_amax));
  }
  absl::StrAppend(&s, ")");
  return s;
}

bool operator==(const QuantDescriptor& a, const QuantDescriptor& b) {
  const QuantDescriptor::Options& x = a.options_;
  const QuantDescriptor::Options& y = b.options_;
  return x.num_bits == y.num_bits && x.name == y.name && x.fake_quant == y.fake_quant &&
         x.axis == y.axis && x.amax == y.amax && x.learn_amax == y.learn_amax &&
         x.scale_amax == y.scale_amax && x.calib_method == y.calib_method &&
         x.is_unsigned == y.is_unsigned && x.narrow_range == y.narrow_range && x.format == y.format;
}

}  // namespace qcal::quant
