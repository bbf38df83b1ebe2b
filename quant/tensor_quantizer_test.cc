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

// An FP8 E4M3 quantizer (num_bits=(4, 3)) calibrates its amax, then fake-quantizes on the
// E4M3 grid scaled by amax / 448 (tensor_quant.h).
TEST(TensorQuantizer, Fp8CalibratesThenFakeQuantizesToE4M3) {
  TensorQuantizer q(QuantDescriptor({.format = kernels::QuantFormat::kFp8E4M3}));
  q->disable_quant();
  q->enable_calib();
  const at::Tensor calib = Floats({-3.5f, 0.5f, 0.25f}, {3});
  EXPECT_EQ(Values(q(calib)), Values(calib));
  q->load_calib_amax();
  EXPECT_EQ(q->amax()->item<float>(), 3.5f);
  q->disable_calib();
  q->enable_quant();
  // step = 3.5 / 448 = 2^-7: in units of the step, 17 and 19 tie to 16 and 20 (even mantissa),
  // 304 ties to 320 (E4M3 steps of 32 in [256, 448)), 640 and -12800 saturate at +-448 (so at
  // +-amax), and in the subnormal region (units of 2^-9 steps) 3 * 2^-10 ties up to 2^-8 and
  // -2^-10 down to -0.
  const at::Tensor x = Floats({17 * 0x1p-7f, 19 * 0x1p-7f, -19 * 0x1p-7f, 2.375f, 0.25f, 3.5f, 5.0f,
                               -100.0f, 3 * 0x1p-17f, -0x1p-17f},
                              {10})
                           .requires_grad_(true);
  const at::Tensor y = q(x);
  const std::vector<float> expected = {16 * 0x1p-7f, 20 * 0x1p-7f, -20 * 0x1p-7f, 2.5f,     0.25f,
                                       3.5f,         3.5f,         -3.5f,         0x1p-15f, -0.0f};
  EXPECT_EQ(Values(y), expected);
  EXPECT_TRUE(std::signbit(Values(y)[9]));
  y.sum().backward();
  EXPECT_EQ(Values(x.grad()), std::vector<float>({1, 1, 1, 1, 1, 1, 0, 0, 1, 1}));
  EXPECT_EQ(q->str(),
            "TensorQuantizer((4, 3)bit fake per-tensor amax=3.5000 calibrator=MaxCalibrator "
            "scale=1.0 quant)");
}

// Real FP8 quantization per channel: the E4M3 values of x / (amax / 448), and scale() records
// 448 / amax as the int path records bound / amax.
TEST(TensorQuantizer, Fp8RealQuantizationPerChannelRecordsScale) {
  TensorQuantizer q(
      QuantDescriptor({.fake_quant = false, .axis = 0, .format = kernels::QuantFormat::kFp8E4M3}));
  q->set_amax(Floats({448.0f, 7.0f}, {2, 1}));
  // Channel 0: step 1; channel 1: step 7 / 448 = 2^-6.
  const at::Tensor x = Floats({17.0f, 19.0f, 500.0f, 3 * 0x1p-10f, -0x1p-10f,  //
                               0.5f, 7.5f, -100.0f, 19 * 0x1p-6f, 3 * 0x1p-16f},
                              {2, 5});
  const std::vector<float> expected = {16.0f, 20.0f,  448.0f,  0x1p-8f, -0.0f,  //
                                       32.0f, 448.0f, -448.0f, 20.0f,   0x1p-8f};
  EXPECT_EQ(Values(q(x)), expected);
  ASSERT_TRUE(q->scale().has_value());
  EXPECT_EQ(Values(*q->scale()), std::vector<float>({1.0f, 64.0f}));
  EXPECT_EQ(q->str(),
            "TensorQuantizer((4, 3)bit axis=0 amax=[7.0000, 448.0000](2) calibrator=MaxCalibrator "
            "scale=[1.0000, 64.0000](2) quant)");
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
