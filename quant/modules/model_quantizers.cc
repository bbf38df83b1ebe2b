#include "quant/modules/model_quantizers.h"

#include <c10/util/Exception.h>

#include <exception>

#include "absl/strings/str_format.h"
#include "quant/errors.h"
#include "quant/max_calibrator.h"

namespace qcal::quant {
namespace {

// A MaxCalibrator's compute_amax takes no method in the reference's loop; a remote one is
// recognised by its descriptor.
bool CalibratesByMax(const TensorQuantizerImpl& quantizer) {
  return quantizer.descriptor().calib_method() == "max" ||
         dynamic_cast<const MaxCalibrator*>(quantizer.calibrator().get()) != nullptr;
}

}  // namespace

std::vector<std::pair<std::string, TensorQuantizer>> named_quantizers(
    const torch::nn::Module& model) {
  std::vector<std::pair<std::string, TensorQuantizer>> quantizers;
  for (const auto& item : model.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    if (auto quantizer = std::dynamic_pointer_cast<TensorQuantizerImpl>(item.value())) {
      quantizers.emplace_back(item.key(), TensorQuantizer(std::move(quantizer)));
    }
  }
  return quantizers;
}

void enable_calibration(torch::nn::Module& model) {
  for (auto& [name, quantizer] : named_quantizers(model)) {
    if (quantizer->calibrator() != nullptr) {
      quantizer->disable_quant();
      quantizer->enable_calib();
    } else {
      quantizer->disable();
    }
  }
}

void disable_calibration(torch::nn::Module& model) {
  for (auto& [name, quantizer] : named_quantizers(model)) {
    if (quantizer->calibrator() != nullptr) {
      quantizer->enable_quant();
      quantizer->disable_calib();
    } else {
      quantizer->enable();
    }
  }
}

void load_calib_amax(torch::nn::Module& model, const CalibAmaxArgs& args, bool strict) {
  for (auto& [name, quantizer] : named_quantizers(model)) {
    if (quantizer->calibrator() == nullptr) continue;
    try {
      if (CalibratesByMax(*quantizer)) {
        quantizer->load_calib_amax({}, strict);
      } else {
        quantizer->load_calib_amax(args, strict);
      }
    } catch (const std::exception& e) {
      internal::RethrowForQuantizer(e, name);
    }
  }
}

void disable_quantizers(torch::nn::Module& model) {
  for (auto& [name, quantizer] : named_quantizers(model)) quantizer->disable();
}

void enable_quantizers(torch::nn::Module& model) {
  for (auto& [name, quantizer] : named_quantizers(model)) quantizer->enable();
}

std::vector<std::pair<std::string, at::Tensor>> named_amax(const torch::nn::Module& model) {
  std::vector<std::pair<std::string, at::Tensor>> table;
  for (const auto& [name, quantizer] : named_quantizers(model)) {
    if (const std::optional<at::Tensor> amax = quantizer->amax()) {
      table.emplace_back(name, amax->detach().to(at::kCPU, at::kFloat).clone());
    }
  }
  return table;
}

void print_quantizers(const torch::nn::Module& model, std::ostream& stream) {
  for (const auto& [name, quantizer] : named_quantizers(model)) {
    stream << absl::StrFormat("%-40s: %s\n", name, quantizer->str());
  }
}

namespace internal {

void RethrowForQuantizer(const std::exception& e, const std::string& quantizer) {
  const auto* error = dynamic_cast<const c10::Error*>(&e);
  std::string message = quantizer + ": " + (error ? error->what_without_backtrace() : e.what());
  if (dynamic_cast<const c10::ValueError*>(&e) != nullptr) ThrowValueError(std::move(message));
  if (dynamic_cast<const c10::TypeError*>(&e) != nullptr) ThrowTypeError(std::move(message));
  if (dynamic_cast<const c10::NotImplementedError*>(&e) != nullptr) {
    ThrowNotImplemented(std::move(message));
  }
  ThrowRuntimeError(std::move(message));
}

}  // namespace internal
}  // namespace qcal::quant
