#include "quant/calibrator.h"

#include <ATen/ops/empty.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "quant/cpu_float.h"
#include "quant/errors.h"
#include "quant/histogram_calibrator.h"
#include "quant/max_calibrator.h"
#include "quant/python_format.h"

namespace qcal::quant {
namespace internal {

at::Tensor ContiguousCpuFloat(const at::Tensor& t, const char* what) {
  if (!t.defined()) ThrowTypeError(absl::StrCat(what, " is an undefined tensor"));
  if (!at::isFloatingType(t.scalar_type())) {
    ThrowTypeError(absl::StrCat(what, " must be a floating-point tensor, not ",
                                c10::toString(t.scalar_type())));
  }
  return t.detach().to(at::kCPU, at::kFloat).contiguous();
}

std::span<const float> FloatSpan(const at::Tensor& cpu_float) {
  return {cpu_float.data_ptr<float>(), static_cast<size_t>(cpu_float.numel())};
}

at::Tensor FloatTensor(std::span<const float> values, const std::vector<int64_t>& shape) {
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
  if (t.numel() != static_cast<int64_t>(values.size())) {
    ThrowRuntimeError(absl::StrCat(values.size(), " amax values do not fill the shape ",
                                   c10::str(c10::IntArrayRef(shape))));
  }
  if (!values.empty()) std::memcpy(t.data_ptr<float>(), values.data(), values.size_bytes());
  return t;
}

}  // namespace internal

std::string Calibrator::BaseRepr() const {
  return absl::StrCat("num_bits=", num_bits_, " axis=", axis_.str(),
                      " unsigned=", internal::PyBool(is_unsigned_));
}

std::shared_ptr<Calibrator> MakeCalibrator(const QuantDescriptor& desc) {
  if (desc.calib_method() == "histogram") {
    return std::make_shared<HistogramCalibrator>(
        HistogramCalibrator::Options{.num_bits = desc.num_bits(),
                                     .axis = desc.axis(),
                                     .is_unsigned = desc.is_unsigned(),
                                     .format = desc.format()});
  }
  return std::make_shared<MaxCalibrator>(MaxCalibrator::Options{
      .num_bits = desc.num_bits(), .axis = desc.axis(), .is_unsigned = desc.is_unsigned()});
}

}  // namespace qcal::quant
