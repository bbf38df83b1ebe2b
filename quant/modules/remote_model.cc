#include "quant/modules/remote_model.h"

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "quant/errors.h"
#include "quant/modules/model_quantizers.h"
#include "quant/remote_calibrator.h"

namespace qcal::quant {

int use_remote_calibrators(torch::nn::Module& model, std::shared_ptr<RemoteSession> session) {
  if (session == nullptr) ThrowValueError("use_remote_calibrators: session is null");
  // Every calibrator is built (and declared) before any is swapped in, so an error leaves the
  // model's calibrators as they were.
  std::vector<std::pair<TensorQuantizer, std::shared_ptr<Calibrator>>> remote;
  for (auto& [name, quantizer] : named_quantizers(model)) {
    if (quantizer->calibrator() == nullptr) continue;
    try {
      remote.emplace_back(
          quantizer, std::make_shared<RemoteCalibrator>(session, name, quantizer->descriptor()));
    } catch (const std::exception& e) {
      internal::RethrowForQuantizer(e, name);
    }
  }
  for (auto& [quantizer, calibrator] : remote) quantizer->set_calibrator(std::move(calibrator));
  return static_cast<int>(remote.size());
}

}  // namespace qcal::quant
