#include "quant/remote_calibrator.h"

#include "absl/strings/str_cat.h"
#include "quant/cpu_float.h"
#include "quant/errors.h"
#include "quant/python_format.h"
#include "quant/reduce_amax.h"
#include "quant/tensor_format.h"
#include "quant/tensor_quantizer.h"

namespace qcal::quant {
namespace {

bool IsHistogram(const v1::QuantizerSpec& spec) {
  return spec.calibrator() == v1::CALIBRATOR_HISTOGRAM;
}

}  // namespace

v1::QuantizerSpec RemoteQuantizerSpec(const std::string& name, const QuantDescriptor& desc) {
  v1::QuantizerSpec spec;
  spec.set_name(name);
  spec.set_num_bits(desc.num_bits());
  spec.set_is_unsigned(desc.is_unsigned());
  spec.set_format(desc.format() == kernels::QuantFormat::kFp8E4M3 ? v1::QUANT_FORMAT_FP8_E4M3
                                                                  : v1::QUANT_FORMAT_INT);
  const bool histogram = desc.calib_method() == "histogram";
  spec.set_calibrator(histogram ? v1::CALIBRATOR_HISTOGRAM : v1::CALIBRATOR_MAX);
  spec.set_num_bins(2048);
  if (!desc.axis().per_tensor()) {
    if (histogram) {
      ThrowNotImplemented(absl::StrCat("Calibrator histogram collection only supports per tensor ",
                                       "scaling (", name, ": axis ", desc.axis().str(), ")"));
    }
    if (desc.axis().axes().size() != 1) {
      ThrowValueError(absl::StrCat(name, ": a qcal-server quantizer keeps one channel axis, not ",
                                   desc.axis().str()));
    }
    spec.set_axis(desc.axis().axes()[0]);
  }
  return spec;
}

RemoteCalibrator::RemoteCalibrator(std::shared_ptr<RemoteSession> session, std::string quantizer,
                                   const QuantDescriptor& desc)
    : Calibrator(desc.num_bits(), desc.axis(), desc.is_unsigned()),
      session_(std::move(session)),
      quantizer_(std::move(quantizer)),
      spec_(RemoteQuantizerSpec(quantizer_, desc)) {
  if (session_ == nullptr) ThrowValueError("RemoteCalibrator: session is null");
  session_->Declare(spec_);
}

void RemoteCalibrator::collect(const at::Tensor& inputs) {
  if (!inputs.defined() || !at::isFloatingType(inputs.scalar_type())) {
    ThrowTypeError(absl::StrCat("RemoteCalibrator ", quantizer_,
                                ": the input must be a defined floating-point tensor"));
  }
  std::vector<int64_t> shape = AmaxShape(inputs.sizes(), axis().Resolve(inputs.dim()));
  if (amax_shape_.has_value() && shape != *amax_shape_) {
    ThrowRuntimeError(absl::StrCat("amax shape changed: ", c10::str(c10::IntArrayRef(shape)),
                                   " for a batch of shape ", c10::str(inputs.sizes()), " of ",
                                   quantizer_, ", earlier batches gave ",
                                   c10::str(c10::IntArrayRef(*amax_shape_))));
  }
  if (inputs.numel() == 0) {
    ThrowValueError(absl::StrCat("RemoteCalibrator ", quantizer_, ": empty batch"));
  }
  session_->Record(quantizer_, inputs);
  amax_shape_ = std::move(shape);
}

void RemoteCalibrator::reset() {
  ThrowNotImplemented(absl::StrCat("RemoteCalibrator ", quantizer_,
                                   ": the server resets whole models; call "
                                   "RemoteSession::Reset() for model ",
                                   session_->model()));
}

std::optional<at::Tensor> RemoteCalibrator::compute_amax(const CalibAmaxArgs& args) {
  if (IsHistogram(spec_) && args.method.empty()) {
    ThrowValueError(absl::StrCat("RemoteCalibrator ", quantizer_,
                                 ": a histogram quantizer needs a method: \"entropy\", \"mse\", "
                                 "\"percentile\" or \"max\""));
  }
  const std::optional<v1::QuantizerAmax> amax = session_->ComputeAmax(quantizer_, args);
  if (!amax.has_value() || amax->amax().empty()) return std::nullopt;
  const std::span<const float> values(amax->amax().data(), amax->amax().size());
  std::vector<int64_t> shape;
  if (amax_shape_.has_value()) {
    shape = *amax_shape_;
  } else if (values.size() > 1) {
    // Another process sent this quantizer's data: the channels as one dimension.
    shape = {static_cast<int64_t>(values.size())};
  }
  return internal::FloatTensor(values, shape);
}

std::string RemoteCalibrator::str() const {
  return absl::StrCat("RemoteCalibrator(model=", session_->model(), " quantizer=", quantizer_,
                      " calibrator=", IsHistogram(spec_) ? "histogram" : "max", ")");
}

std::string RemoteCalibrator::repr() const {
  return absl::StrCat("RemoteCalibrator(", BaseRepr(), " model=", session_->model(),
                      " quantizer=", quantizer_,
                      " calibrator=", IsHistogram(spec_) ? "histogram" : "max", ")");
}

void UseRemoteCalibrator(TensorQuantizerImpl& quantizer, std::shared_ptr<RemoteSession> session,
                         const std::string& name) {
  quantizer.set_calibrator(
      std::make_shared<RemoteCalibrator>(std::move(session), name, quantizer.descriptor()));
}

}  // namespace qcal::quant
