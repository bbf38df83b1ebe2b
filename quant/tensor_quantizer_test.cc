#include "quant/tensor_quantizer.h"

#include <ATen/ops/tensor.h>
#include <c10/util/Exception.h>
#include <torch/serialize.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "gtest/gtest.h"
#include "quant/histogram_calibrator.h"

namespace qcal::quant {
namespace {

std::vector<float> Values(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

at::Tensor Floats(std::vector<float> values, std::vector<int64_t> shape) {
  return at::tensor(values, at::kFloat).reshape(shape);
}

TEST(TensorQuantizer, DefaultIsDynamicEightBitFakeFullRange) {
  TensorQuantizer q;
  EXPECT_EQ(q->str(),
            "TensorQuantizer(8bit fake per-tensor amax=dynamic calibrator=MaxCalibrator scale=1.0 "
            "quant)");
  EXPECT_FALSE(q->amax().has_value());
  const at::Tensor x = Floats({-1.0f, 0.5f, 0.25f}, {3});
  // amax = max|x| = 1; the descriptor's full range gives -128/127 for -1 only beyond -amax.
  EXPECT_EQ(Values(q(x)), std::vector<float>({-1.0f, 64 / 127.0f, 32 / 127.0f}));
  q->set_amax(0.5);
  EXPECT_EQ(Values(q(x)), std::vector<float>({-128 / 254.0f, 0.5f, 64 / 254.0f}));
  EXPECT_EQ(q->str(),
            "TensorQuantizer(8bit fake per-tensor amax=0.5000 calibrator=MaxCalibrator scale=1.0 "
            "quant)");
}

// Until kernels/ has E4M3 rounding, an FP8 quantizer calibrates but refuses to quantize (an
// integer grid would be a silent wrong number).
TEST(TensorQuantizer, Fp8CalibratesButRefusesToQuantize) {
  TensorQuantizer q(QuantDescriptor({.format = kernels::QuantFormat::kFp8E4M3}));
  const at::Tensor x = Floats({-3.0f, 0.5f, 0.25f}, {3});
  try {
    q(x);
    ADD_FAILURE() << "FP8 fake quant ran";
  } catch (const c10::NotImplementedError& error) {
    EXPECT_NE(std::string(error.what()).find("FP8 fake quant needs kernels' E4M3"),
              std::string::npos)
        << error.what();
  }
  q->disable_quant();
  q->enable_calib();
  q(x);
  q->load_calib_amax();
  EXPECT_EQ(q->amax()->item<float>(), 3.0f);
  EXPECT_NE(q->str().find("(4, 3)bit fake"), std::string::npos) << q->str();
}

TEST(TensorQuantizer, RealQuantizationUsesTheNarrowRangeAndRecordsScale) {
  TensorQuantizer q(QuantDescriptor({.fake_quant = false}));
  EXPECT_FALSE(q->scale().has_value());
  q->set_amax(1.0);
  EXPECT_EQ(Values(q(Floats({-2.0f, 0.5f}, {2}))), std::vector<float>({-127, 64}));
  ASSERT_TRUE(q->scale().has_value());
  EXPECT_EQ(q->scale()->item<float>(), 127.0f);
  EXPECT_EQ(q->str(),
            "TensorQuantizer(8bit per-tensor amax=1.0000 calibrator=MaxCalibrator scale=127.0 "
            "quant)");
}

TEST(TensorQuantizer, PerChannelScalePrintsAsTensorInRepr) {
  TensorQuantizer q(QuantDescriptor({.fake_quant = false, .axis = 0}));
  q(Floats({1.0f, -0.5f, 2.0f, 4.0f}, {2, 2}));
  EXPECT_EQ(q->str(),
            "TensorQuantizer(8bit axis=0 amax=dynamic calibrator=MaxCalibrator "
            "scale=[31.7500, 127.0000](2) quant)");
  EXPECT_EQ(q->repr(),
            "TensorQuantizer(\n  8bit axis=0 amax=dynamic calibrator=MaxCalibrator "
            "scale=tensor([[127.0000],\n          [ 31.7500]]) quant\n)");
}

TEST(TensorQuantizer, CalibrationFlow) {
  TensorQuantizer q(QuantDescriptor({.calib_method = "histogram"}));
  q->disable_quant();
  q->enable_calib();
  const at::Tensor a = Floats({0.5f, -2.0f, 1.0f}, {3});
  EXPECT_TRUE(q(a).is_same(a));  // calibration returns the input itself
  q(Floats({3.0f, 0.25f}, {2}));
  EXPECT_EQ(q->str(),
            "TensorQuantizer(8bit fake per-tensor amax=dynamic calibrator=HistogramCalibrator "
            "scale=1.0 calib)");
  EXPECT_THROW(q->load_calib_amax(), c10::ValueError);  // a histogram needs a method
  // The last bin's lower edge (3071 bins of width 2/2048), as the reference's percentile.
  q->load_calib_amax({.method = "percentile", .percentile = 99.0});
  EXPECT_EQ(q->amax()->item<float>(), 2.9990234375f);
  q->load_calib_amax({.method = "max"});
  EXPECT_EQ(q->amax()->item<float>(), 3.0f);
  q->disable_calib();
  q->enable_quant();
  EXPECT_EQ(Values(q(Floats({1.5f}, {1}))), std::vector<float>({64.0f / (127.0f / 3.0f)}));
}

TEST(TensorQuantizer, LoadCalibAmaxWithoutData) {
  TensorQuantizer strict;
  EXPECT_THROW(strict->load_calib_amax(), c10::Error);
  EXPECT_FALSE(strict->amax().has_value());
  TensorQuantizer lenient;
  lenient->load_calib_amax({}, /*strict=*/false);
  EXPECT_TRUE(std::isnan(lenient->amax()->item<float>()));
  EXPECT_TRUE(std::isnan(Values(lenient(Floats({1.0f}, {1})))[0]));
  EXPECT_EQ(lenient->str(),
            "TensorQuantizer(8bit fake per-tensor amax=nan calibrator=MaxCalibrator scale=1.0 "
            "quant)");
}

TEST(TensorQuantizer, SetAmaxKeepsItsShape) {
  TensorQuantizer q(QuantDescriptor({.axis = 0}));
  q->set_amax(std::vector<float>{1.0f, 2.0f, 3.0f});
  EXPECT_THROW(q->set_amax(Floats({1, 1, 1, 1}, {4})), c10::Error);
  EXPECT_THROW(q->set_amax(Floats({1, -1, 1}, {3})), c10::ValueError);
  EXPECT_EQ(Values(*q->amax()), std::vector<float>({1, 2, 3}));
  EXPECT_EQ(q->str(),
            "TensorQuantizer(8bit fake axis=0 amax=[1.0000, 3.0000](3) calibrator=MaxCalibrator "
            "scale=1.0 quant)");
}

TEST(TensorQuantizer, DynamicAxisOutOfRangeIsRefused) {
  TensorQuantizer q(QuantDescriptor({.axis = QuantAxis::Tuple({5})}));
  EXPECT_THROW(q(Floats({1, 2}, {2})), c10::ValueError);
  TensorQuantizer last(QuantDescriptor({.axis = -1}));
  // Negative axes count from the end: one amax per column.
  EXPECT_EQ(Values(last(Floats({1, -4, 0.5, 2}, {2, 2}))),
            std::vector<float>({1, -4, 64 / 127.0f, 64 / 31.75f}));
}

TEST(TensorQuantizer, DisabledPassesThrough) {
  TensorQuantizer q;
  q->disable();
  const at::Tensor x = Floats({0.123f, -7.0f}, {2});
  EXPECT_TRUE(q(x).is_same(x));
  EXPECT_EQ(q->str(), "TensorQuantizer(disabled)");
  q->enable();
  EXPECT_FALSE(q(x).is_same(x));
}

TEST(TensorQuantizer, LearnAmaxClipStage) {
  TensorQuantizer q(QuantDescriptor({.amax = DescriptorAmax::Scalar(2.0f), .learn_amax = true}));
  EXPECT_TRUE(q->is_clip_enabled());
  EXPECT_EQ(q->repr(),
            "TensorQuantizer(\n  8bit fake per-tensor amax=2.0000 learned calibrator=MaxCalibrator "
            "scale=1.0 quant clip\n  (clip): Clip()\n)");
  EXPECT_EQ(q->parameters().size(), 2u);
  const at::Tensor x = Floats({0.5f, 3.0f, -2.5f, 2.0f}, {4}).requires_grad_(true);
  const at::Tensor y = q(x);
  EXPECT_EQ(Values(y), std::vector<float>({32 / 63.5f, 2.0f, -2.0f, 2.0f}));
  y.backward(Floats({1, 2, 3, 4}, {4}));
  // Inside (-2, 2) only; max gets the grads where x >= 2, min where x <= -2.
  EXPECT_EQ(Values(x.grad()), std::vector<float>({1, 0, 0, 0}));
  EXPECT_EQ(q->clip()->clip_value_max().grad().item<float>(), 6.0f);
  EXPECT_EQ(q->clip()->clip_value_min().grad().item<float>(), 3.0f);
  q->set_amax(1.5);
  q->init_learn_amax();
  EXPECT_EQ(q->clip()->clip_value_min().item<float>(), -1.5f);
  TensorQuantizer plain;
  EXPECT_THROW(plain->enable_clip(), c10::ValueError);
  EXPECT_THROW(plain->init_learn_amax(), c10::Error);
}

TEST(TensorQuantizer, CalibratedAmaxSurvivesSaveAndLoad) {
  TensorQuantizer calibrated(QuantDescriptor({.axis = 0}));
  calibrated->disable_quant();
  calibrated->enable_calib();
  calibrated(Floats({1, -2, 3, 4}, {2, 2}));
  calibrated->load_calib_amax();
  std::stringstream stream;
  torch::save(calibrated, stream);
  TensorQuantizer fresh(QuantDescriptor({.axis = 0}));
  torch::load(fresh, stream);
  ASSERT_TRUE(fresh->amax().has_value());
  EXPECT_EQ(fresh->amax()->sizes(), c10::IntArrayRef({2, 1}));
  EXPECT_EQ(Values(*fresh->amax()), std::vector<float>({2, 4}));
}

TEST(TensorQuantizer, ReplacedCalibrator) {
  TensorQuantizer q;
  q->set_calibrator(std::make_shared<HistogramCalibrator>(HistogramCalibrator::Options{}));
  EXPECT_EQ(q->calibrator()->name(), "HistogramCalibrator");
  q->set_calibrator(nullptr);
  EXPECT_THROW(q->enable_calib(), c10::Error);
  EXPECT_THROW(q->load_calib_amax(), c10::Error);
}

}  // namespace
}  // namespace qcal::quant
