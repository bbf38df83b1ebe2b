// use_remote_calibrators without a server (declaring contacts none): every quantizer of a model
// gets a RemoteCalibrator under its pytorch-quantization name, or none does. Calibration against
// a real qcal-server, with the same amax as the local calibrators, is checked end to end by the
// qat_fashion_mnist example's ctest (examples/qat_fashion_mnist).
#include "quant/modules/remote_model.h"

#include <c10/util/Exception.h>
#include <torch/nn/modules/container/sequential.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quant/modules/model_quantizers.h"
#include "quant/modules/quant_conv.h"
#include "quant/modules/quant_linear.h"
#include "quant/remote_calibrator.h"

namespace qcal::quant {
namespace {

std::shared_ptr<RemoteSession> Session() {
  auto client = Client::Create("127.0.0.1:1");  // never contacted here
  EXPECT_TRUE(client.ok()) << client.status();
  return RemoteSession::Create(std::move(*client), "tiny");
}

TEST(UseRemoteCalibrators, EveryQuantizerUnderItsName) {
  torch::nn::Sequential model(
      QuantConv2d(
          torch::nn::Conv2dOptions(1, 2, 3),
          QuantMixinOptions{.quant_desc_input = QuantDescriptor({.calib_method = "histogram"})}),
      QuantLinear(4, 2));
  model[1]->as<QuantLinear>()->weight_quantizer()->set_calibrator(nullptr);  // keeps none
  const auto session = Session();
  EXPECT_EQ(use_remote_calibrators(*model, session), 3);
  std::vector<std::string> names;
  for (const auto& [name, quantizer] : named_quantizers(*model)) {
    if (quantizer->calibrator() == nullptr) {
      EXPECT_EQ(name, "1._weight_quantizer");
      continue;
    }
    const auto* remote = dynamic_cast<const RemoteCalibrator*>(quantizer->calibrator().get());
    ASSERT_NE(remote, nullptr) << name;
    EXPECT_EQ(remote->session(), session);
    names.push_back(remote->quantizer());
  }
  EXPECT_EQ(names, std::vector<std::string>(
                       {"0._input_quantizer", "0._weight_quantizer", "1._input_quantizer"}));
  EXPECT_EQ(model[0]->as<QuantConv2d>()->input_quantizer()->calibrator()->str(),
            "RemoteCalibrator(model=tiny quantizer=0._input_quantizer calibrator=histogram)");
}

TEST(UseRemoteCalibrators, AnUnsupportedQuantizerChangesNothing) {
  // A server quantizer keeps one channel axis: a weight kept along two is refused.
  torch::nn::Sequential model(
      QuantLinear(4, 2), QuantLinear(4, 2,
                                     QuantMixinOptions{.quant_desc_weight = QuantDescriptor(
                                                           {.axis = QuantAxis::Tuple({0, 1})})}));
  try {
    use_remote_calibrators(*model, Session());
    FAIL() << "no error";
  } catch (const c10::ValueError& e) {
    EXPECT_EQ(std::string(e.what_without_backtrace()).rfind("1._weight_quantizer: ", 0), 0u)
        << e.what_without_backtrace();
  }
  for (const auto& [name, quantizer] : named_quantizers(*model)) {
    EXPECT_EQ(quantizer->calibrator()->name(), "MaxCalibrator") << name;
  }
}

TEST(UseRemoteCalibrators, NullSessionIsAValueError) {
  QuantLinear fc(2, 2);
  EXPECT_THROW(use_remote_calibrators(*fc, nullptr), c10::ValueError);
}

}  // namespace
}  // namespace qcal::quant
