// Walking a model's TensorQuantizers: the calibration loop of pytorch-quantization's tutorials
// (collect_stats / compute_amax in examples/calibrate_quant_resnet50.ipynb) as functions.
//
//   using namespace qcal::quant;
//   enable_calibration(*model);                     // quant off, calibrators on
//   for (auto& batch : calibration_batches) model->forward(batch);
//   disable_calibration(*model);                    // quant on, calibrators off
//   load_calib_amax(*model, {.method = "percentile", .percentile = 99.99});
//   print_quantizers(*model, std::cout);
//   // conv1._input_quantizer                 : TensorQuantizer(8bit fake per-tensor amax=2.8215
//   ...)
//
// Every function visits the quantizers among the model's submodules, in named_modules() order,
// named as named_modules() names them ("features.0._input_quantizer", the names
// pytorch-quantization and a qcal-server use); a block's own TensorQuantizer submodule counts
// too, e.g. "layer1.0.residual_quantizer" (residual_quantizer.h). The model itself is not
// visited (so it may live on the stack; named_modules() with include_self needs a shared_ptr).
// No function contacts a server itself; load_calib_amax does through RemoteCalibrators
// (remote_model.h).
#ifndef QCAL_QUANT_MODULES_MODEL_QUANTIZERS_H_
#define QCAL_QUANT_MODULES_MODEL_QUANTIZERS_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <exception>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "quant/calibrator.h"
#include "quant/tensor_quantizer.h"

namespace qcal::quant {

// The quantizers of `model` with their names (holders sharing the model's modules).
std::vector<std::pair<std::string, TensorQuantizer>> named_quantizers(
    const torch::nn::Module& model);

// Calibration mode, as the reference's collect_stats: a quantizer with a calibrator stops
// quantizing and collects (disable_quant, enable_calib); one without is disabled.
void enable_calibration(torch::nn::Module& model);
// Back to quantization: enable_quant and disable_calib where there is a calibrator; enable()
// elsewhere.
void disable_calibration(torch::nn::Module& model);

// Every quantizer's amax from its calibrator, as the reference's compute_amax: quantizers that
// calibrate by max (calib_method "max" or a MaxCalibrator) get load_calib_amax() without
// arguments, the others load_calib_amax(args, strict). Quantizers without a calibrator are
// skipped. Errors: the first quantizer's error (c10::ValueError for a bad method, c10::Error when
// strict and a calibrator saw nothing), rethrown with its name prefixed; the quantizers before it
// keep their new amax.
void load_calib_amax(torch::nn::Module& model, const CalibAmaxArgs& args, bool strict = true);

// disable() / enable() every quantizer: the float model (training before quantization) and back.
void disable_quantizers(torch::nn::Module& model);
void enable_quantizers(torch::nn::Module& model);

// The amax of every quantizer that has one (float32 tensors, CPU, detached copies), by name.
std::vector<std::pair<std::string, at::Tensor>> named_amax(const torch::nn::Module& model);

// One line per quantizer, "<name padded to 40>: <quantizer->str()>", as the reference's
// print(F"{name:40}: {module}").
void print_quantizers(const torch::nn::Module& model, std::ostream& stream);

namespace internal {

// Throws `e` again, of the same c10 kind (ValueError, TypeError, NotImplementedError, else
// c10::Error), its message (without backtrace) prefixed with "<quantizer>: ".
[[noreturn]] void RethrowForQuantizer(const std::exception& e, const std::string& quantizer);

}  // namespace internal

}  // namespace qcal::quant

#endif  // QCAL_QUANT_MODULES_MODEL_QUANTIZERS_H_
