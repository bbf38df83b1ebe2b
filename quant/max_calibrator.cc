#include "quant/max_calibrator.h"

#include "absl/strings/str_cat.h"
#include "kernels/histogram_amax.h"
#include "quant/cpu_float.h"
#include "quant/errors.h"
#include "quant/python_format.h"
#include "quant/reduce_amax.h"
#include "quant/tensor_format.h"

namespace qcal::quant {

MaxCalibrator::MaxCalibrator(Options options)
    : Calibrator(options.num_bits, options.axis, options.is_unsigned),
      track_amax_(options.track_amax),
      calib_(NewKernel()) {}

kernels::MaxCalibrator MaxCalibrator::NewKernel() const {
  return kernels::MaxCalibrator(axis().axes());
}

void MaxCalibrator::collect(const at::Tensor& inputs) {
  const at::Tensor x = internal::ContiguousCpuFloat(inputs, "MaxCalibrator input");
  const std::vector<int64_t> shape = AmaxShape(x.sizes(), axis().Resolve(x.dim()));
  if (!calib_.empty() && shape != amax_shape_) {
    ThrowRuntimeError(absl::StrCat(
        "amax shape changed: ", c10::str(c10::IntArrayRef(shape)), " for a batch of shape ",
        c10::str(x.sizes()), ", earlier batches gave ", c10::str(c10::IntArrayRef(amax_shape_))));
  }
  const std::span<const float> values = internal::FloatSpan(x);
  at::Tensor own;
  if (track_amax_) {
    kernels::MaxCalibrator single = NewKernel();
    ThrowIfError(single.Collect(values, x.sizes()).status(), "MaxCalibrator.collect");
    own = internal::FloatTensor(single.amax(), shape);
  }
  const absl::StatusOr<kernels::CollectStats> stats = calib_.Collect(values, x.sizes());
  ThrowIfError(stats.status(), "MaxCalibrator.collect");
  nonfinite_ += stats->nonfinite;
  amax_shape_ = shape;
  if (track_amax_) amaxs_.push_back(std::move(own));
}

void MaxCalibrator::reset() {
  calib_.Reset();
  amax_shape_.clear();
  amaxs_.clear();
  nonfinite_ = 0;
}

std::optional<at::Tensor> MaxCalibrator::compute_amax(const CalibAmaxArgs& args) {
  if (!args.method.empty()) {
    ThrowIfError(kernels::ParseAmaxMethod(args.method).status(), "MaxCalibrator.compute_amax");
  }
  if (calib_.empty()) return std::nullopt;
  return internal::FloatTensor(calib_.amax(), amax_shape_);
}

std::string MaxCalibrator::str() const {
  return absl::StrCat("MaxCalibrator(track_amax=", internal::PyBool(track_amax_), ")");
}

std::string MaxCalibrator::repr() const {
  const std::string amax =
      calib_.empty() ? "None"
                     : internal::TorchFormat(internal::FloatTensor(calib_.amax(), amax_shape_));
  return absl::StrCat("MaxCalibrator(", BaseRepr(), " calib_amax=", amax,
                      " track_amax=", internal::PyBool(track_amax_), ")");
}

}  // namespace qcal::quant
