// The model-walking helpers on a small quantized network (QuantConv2d, QuantMaxPool2d,
// QuantLinear under pytorch-quantization's names): the calibration loop, amax loading by method,
// printing, enabling, saving, and a few QAT steps whose gradients follow the straight-through
// estimator written out by hand.
#include "quant/modules/model_quantizers.h"

#include <c10/util/Exception.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>

#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quant/histogram_calibrator.h"
#include "quant/modules/quant_conv.h"
#include "quant/modules/quant_linear.h"
#include "quant/modules/quant_pooling.h"
#include "quant/tensor_quant.h"

namespace qcal::quant {
namespace {

const QuantDescriptor kHistogram({.calib_method = "histogram"});

// [N, 1, 4, 4] -> conv 3x3 (2 channels) -> ReLU -> max pool 2 -> [N, 8] -> linear -> [N, 3].
// Inputs calibrate with histograms, weights with max, as the reference's recipe.
struct TinyNet : torch::nn::Module {
  TinyNet() {
    features = register_module(
        "features", torch::nn::Sequential(
                        QuantConv2d(torch::nn::Conv2dOptions(1, 2, 3).padding(1),
                                    QuantMixinOptions{.quant_desc_input = kHistogram}),
                        torch::nn::ReLU(),
                        QuantMaxPool2d(2, QuantInputOptions{.quant_desc_input = kHistogram})));
    classifier = register_module(
        "classifier", QuantLinear(8, 3, QuantMixinOptions{.quant_desc_input = kHistogram}));
  }
  at::Tensor forward(const at::Tensor& x) { return classifier(features->forward(x).flatten(1)); }

  QuantConv2d conv() { return features->ptr<QuantConv2dImpl>(0); }

  torch::nn::Sequential features{nullptr};
  QuantLinear classifier{nullptr};
};

std::vector<std::string> Names(const torch::nn::Module& model) {
  std::vector<std::string> names;
  for (const auto& [name, quantizer] : named_quantizers(model)) names.push_back(name);
  return names;
}

class ModelQuantizersTest : public testing::Test {
 protected:
  ModelQuantizersTest() {
    torch::manual_seed(17);
    net_ = std::make_unique<TinyNet>();
    batches_ = {torch::randn({4, 1, 4, 4}), torch::randn({4, 1, 4, 4}) * 2};
  }
  void Calibrate() {
    enable_calibration(*net_);
    for (const at::Tensor& x : batches_) net_->forward(x);
    disable_calibration(*net_);
  }

  std::unique_ptr<TinyNet> net_;
  std::vector<at::Tensor> batches_;
};

TEST_F(ModelQuantizersTest, NamesAreNamedModulesNames) {
  EXPECT_EQ(Names(*net_), std::vector<std::string>({
                              "features.0._input_quantizer",
                              "features.0._weight_quantizer",
                              "features.2._input_quantizer",
                              "classifier._input_quantizer",
                              "classifier._weight_quantizer",
                          }));
}

TEST_F(ModelQuantizersTest, CalibrationTogglesEveryQuantizer) {
  net_->conv()->weight_quantizer()->set_calibrator(nullptr);  // as a quantizer without one
  enable_calibration(*net_);
  for (const auto& [name, q] : named_quantizers(*net_)) {
    if (name == "features.0._weight_quantizer") {
      EXPECT_FALSE(q->is_enabled());
    } else {
      EXPECT_TRUE(q->is_enabled() && !q->is_quant_enabled() && q->is_calib_enabled()) << name;
    }
  }
  disable_calibration(*net_);
  for (const auto& [name, q] : named_quantizers(*net_)) {
    EXPECT_TRUE(q->is_enabled()) << name;
    if (name != "features.0._weight_quantizer") {
      EXPECT_TRUE(q->is_quant_enabled() && !q->is_calib_enabled()) << name;
    }
  }
  disable_quantizers(*net_);
  for (const auto& [name, q] : named_quantizers(*net_)) EXPECT_FALSE(q->is_enabled()) << name;
  enable_quantizers(*net_);
  for (const auto& [name, q] : named_quantizers(*net_)) EXPECT_TRUE(q->is_enabled()) << name;
}

TEST_F(ModelQuantizersTest, LoadCalibAmaxByMethod) {
  // What each quantizer sees in calibration (quantization off): the float activations.
  disable_quantizers(*net_);
  std::vector<at::Tensor> pool_inputs;
  float input_max = 0, pool_max = 0;
  for (const at::Tensor& x : batches_) {
    pool_inputs.push_back(net_->features[1]->as<torch::nn::ReLU>()->forward(net_->conv()(x)));
    input_max = std::max(input_max, x.abs().max().item<float>());
    pool_max = std::max(pool_max, pool_inputs.back().abs().max().item<float>());
  }
  enable_quantizers(*net_);
  Calibrate();

  load_calib_amax(*net_, {.method = "max"});
  const auto& conv = net_->conv();
  EXPECT_EQ(conv->input_quantizer()->amax()->item<float>(), input_max);
  EXPECT_EQ(net_->features->ptr<QuantMaxPool2dImpl>(2)->input_quantizer()->amax()->item<float>(),
            pool_max);
  const at::Tensor weight_amax = conv->weight.detach().abs().amax({1, 2, 3}, true);
  EXPECT_TRUE(torch::equal(*conv->weight_quantizer()->amax(), weight_amax));

  // Histogram quantizers take the method; max ones ignore it (the reference's compute_amax).
  load_calib_amax(*net_, {.method = "percentile", .percentile = 99.0});
  HistogramCalibrator by_hand({});
  for (const at::Tensor& p : pool_inputs) by_hand.collect(p);
  const float percentile =
      by_hand.compute_amax({.method = "percentile", .percentile = 99.0})->item<float>();
  EXPECT_LT(percentile, pool_max);
  EXPECT_EQ(net_->features->ptr<QuantMaxPool2dImpl>(2)->input_quantizer()->amax()->item<float>(),
            percentile);
  EXPECT_TRUE(torch::equal(*conv->weight_quantizer()->amax(), weight_amax));

  const auto table = named_amax(*net_);
  ASSERT_EQ(table.size(), 5u);
  EXPECT_EQ(table[2].first, "features.2._input_quantizer");
  EXPECT_EQ(table[2].second.item<float>(), percentile);
  EXPECT_EQ(table[4].second.sizes(), at::IntArrayRef({3, 1}));
}

TEST_F(ModelQuantizersTest, LoadErrorsNameTheQuantizer) {
  try {
    load_calib_amax(*net_, {.method = "entropy"});  // nothing calibrated yet
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_EQ(std::string(e.what_without_backtrace()).rfind("features.0._input_quantizer: ", 0), 0u)
        << e.what_without_backtrace();
  }
  Calibrate();
  try {
    load_calib_amax(*net_, {.method = "median"});
    FAIL() << "no error";
  } catch (const c10::ValueError& e) {
    EXPECT_EQ(std::string(e.what_without_backtrace()).rfind("features.0._input_quantizer: ", 0), 0u)
        << e.what_without_backtrace();
  }
  load_calib_amax(*net_, {.method = "entropy"});
  EXPECT_EQ(named_amax(*net_).size(), 5u);
}

TEST_F(ModelQuantizersTest, PrintsOneLinePerQuantizer) {
  Calibrate();
  net_->conv()->input_quantizer()->set_amax(2.5);
  std::ostringstream printed;
  print_quantizers(*net_, printed);
  const std::string histogram =
      "TensorQuantizer(8bit fake per-tensor amax=dynamic "
      "calibrator=HistogramCalibrator scale=1.0 quant)\n";
  const std::string max_axis0 =
      "TensorQuantizer(8bit fake axis=0 amax=dynamic "
      "calibrator=MaxCalibrator scale=1.0 quant)\n";
  EXPECT_EQ(printed.str(),
            "features.0._input_quantizer             : TensorQuantizer(8bit fake per-tensor "
            "amax=2.5000 calibrator=HistogramCalibrator scale=1.0 quant)\n"
            "features.0._weight_quantizer            : " +
                max_axis0 + "features.2._input_quantizer             : " + histogram +
                "classifier._input_quantizer             : " + histogram +
                "classifier._weight_quantizer            : " + max_axis0);
}

TEST_F(ModelQuantizersTest, DisabledQuantizersGiveTheFloatNetwork) {
  const at::Tensor x = batches_[0];
  const auto conv = net_->conv();
  const at::Tensor by_hand = torch::linear(
      torch::max_pool2d(torch::relu(torch::conv2d(x, conv->weight, conv->bias, {1, 1}, {1, 1})), 2)
          .flatten(1),
      net_->classifier->weight, net_->classifier->bias);
  disable_quantizers(*net_);
  EXPECT_TRUE(torch::allclose(net_->forward(x), by_hand, 1e-6, 1e-6));
  enable_quantizers(*net_);
  EXPECT_FALSE(torch::allclose(net_->forward(x), by_hand, 1e-6, 1e-6));
}

TEST_F(ModelQuantizersTest, AmaxTravelsWithTheStateDict) {
  Calibrate();
  load_calib_amax(*net_, {.method = "mse"});
  std::stringstream saved;
  torch::serialize::OutputArchive out;
  net_->save(out);
  out.save_to(saved);
  TinyNet fresh;  // every amax dynamic
  torch::serialize::InputArchive in;
  in.load_from(saved);
  fresh.load(in);
  const auto expected = named_amax(*net_);
  const auto loaded = named_amax(fresh);
  ASSERT_EQ(loaded.size(), expected.size());
  for (size_t i = 0; i < loaded.size(); ++i) {
    EXPECT_EQ(loaded[i].first, expected[i].first);
    EXPECT_TRUE(torch::equal(loaded[i].second, expected[i].second)) << loaded[i].first;
  }
  EXPECT_TRUE(torch::equal(fresh.forward(batches_[0]), net_->forward(batches_[0])));
}

TEST_F(ModelQuantizersTest, QatStepsFollowTheStraightThroughEstimator) {
  Calibrate();
  load_calib_amax(*net_, {.method = "max"});
  // Half the calibrated weight range for the classifier: its larger weights clip and get no
  // gradient.
  auto& fc = net_->classifier;
  const at::Tensor w_amax = fc->weight.detach().abs().amax({1}, true) * 0.5;
  fc->weight_quantizer()->set_amax(w_amax);
  const at::Tensor x = batches_[0];
  const at::Tensor target = torch::tensor({0, 1, 2, 1}, torch::kLong);

  // By hand for the classifier: y = xq wq^T + b; dL/dW = dL/dy^T xq where |w| <= amax, else 0.
  const at::Tensor features = net_->features->forward(x).flatten(1).detach();
  const at::Tensor in_amax = *fc->input_quantizer()->amax();
  const at::Tensor xq = fake_tensor_quant(features, in_amax, 8, false, false);
  const at::Tensor w = fc->weight.detach();
  const at::Tensor wq = fake_tensor_quant(w, w_amax, 8, false, false);
  const at::Tensor logits = torch::linear(xq, wq, fc->bias.detach());
  const at::Tensor dy =
      (torch::softmax(logits, 1) - torch::one_hot(target, 3).to(torch::kFloat)) / 4.0;  // mean NLL
  const at::Tensor mask = w.abs().le(w_amax).to(torch::kFloat);
  ASSERT_GT(mask.sum().item<float>(), 0);
  ASSERT_LT(mask.sum().item<float>(), mask.numel());
  const at::Tensor grad_w = torch::matmul(dy.t(), xq) * mask;

  torch::optim::SGD sgd(net_->parameters(), torch::optim::SGDOptions(0.5));
  sgd.zero_grad();
  const at::Tensor loss = torch::cross_entropy_loss(net_->forward(x), target);
  loss.backward();
  EXPECT_TRUE(torch::allclose(fc->weight.grad(), grad_w, 1e-5, 1e-6))
      << fc->weight.grad() << grad_w;
  EXPECT_TRUE(fc->weight.grad().masked_select(mask.logical_not()).eq(0).all().item<bool>());
  // The gradient reaches the convolution through the pool's and the classifier's quantizers.
  EXPECT_GT(net_->conv()->weight.grad().abs().sum().item<float>(), 0);
  sgd.step();

  float previous = loss.item<float>();
  for (int step = 0; step < 5; ++step) {
    sgd.zero_grad();
    const at::Tensor l = torch::cross_entropy_loss(net_->forward(x), target);
    l.backward();
    sgd.step();
    EXPECT_LT(l.item<float>(), previous) << "step " << step;
    previous = l.item<float>();
  }
}

}  // namespace
}  // namespace qcal::quant
