#include <ATen/TensorOperators.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/utils.h>

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/histogram.h"
#include "kernels/histogram_amax.h"
#include "quant/histogram_calibrator.h"
#include "quant/max_calibrator.h"

namespace qcal::quant {
namespace {

std::vector<float> Values(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

at::Tensor Floats(std::vector<float> values, std::vector<int64_t> shape) {
  return at::tensor(values, at::kFloat).reshape(shape);
}

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

TEST(MaxCalibrator, PerTensorRunningMax) {
  MaxCalibrator calib({});
  EXPECT_FALSE(calib.compute_amax().has_value());
  calib.collect(Floats({1.0f, -2.5f}, {2}));
  calib.collect(Floats({0.5f, 2.0f, -1.0f, 0.0f}, {2, 2}));
  const at::Tensor amax = *calib.compute_amax();
  EXPECT_EQ(amax.dim(), 0);
  EXPECT_EQ(amax.item<float>(), 2.5f);
  EXPECT_EQ(calib.str(), "MaxCalibrator(track_amax=False)");
  EXPECT_EQ(calib.repr(),
            "MaxCalibrator(num_bits=8 axis=None unsigned=False calib_amax=2.5 track_amax=False)");
  calib.reset();
  EXPECT_FALSE(calib.compute_amax().has_value());
}

TEST(MaxCalibrator, PerChannelKeepsSizeOneDims) {
  MaxCalibrator calib({.axis = 0, .track_amax = true});
  // KCRS weights, K = 2: channel 0 holds 1..4, channel 1 holds -8..-5 (times the batch index).
  const at::Tensor w1 = Floats({1, 2, 3, 4, -5, -6, -7, -8}, {2, 1, 2, 2});
  const at::Tensor w2 = Floats({9, 0, 0, 0, 1, 1, 1, 1}, {2, 1, 2, 2});
  calib.collect(w1);
  calib.collect(w2);
  const at::Tensor amax = *calib.compute_amax();
  EXPECT_EQ(amax.sizes(), c10::IntArrayRef({2, 1, 1, 1}));
  EXPECT_EQ(Values(amax), std::vector<float>({9, 8}));
  ASSERT_EQ(calib.amaxs().size(), 2u);
  EXPECT_EQ(Values(calib.amaxs()[0]), std::vector<float>({4, 8}));  // batch 0 by itself
  EXPECT_EQ(Values(calib.amaxs()[1]), std::vector<float>({9, 1}));
  EXPECT_EQ(calib.repr(),
            "MaxCalibrator(num_bits=8 axis=0 unsigned=False calib_amax="
            "tensor([[[[9.]]],\n\n\n        [[[8.]]]]) track_amax=True)");
}

TEST(MaxCalibrator, AxisTupleAndNegativeAxis) {
  MaxCalibrator last({.axis = -1});
  last.collect(Floats({1, -4, 3, 2}, {2, 2}));
  EXPECT_EQ(last.compute_amax()->sizes(), c10::IntArrayRef({1, 2}));
  EXPECT_EQ(Values(*last.compute_amax()), std::vector<float>({3, 4}));
  MaxCalibrator both({.axis = QuantAxis::Tuple({0, 1})});
  both.collect(Floats({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}));
  EXPECT_EQ(both.compute_amax()->sizes(), c10::IntArrayRef({2, 2, 1}));
  EXPECT_EQ(Values(*both.compute_amax()), std::vector<float>({2, 4, 6, 8}));
}

TEST(MaxCalibrator, NonFiniteLeftOutAndCounted) {
  MaxCalibrator calib({});
  calib.collect(Floats({1.0f, kNan, -std::numeric_limits<float>::infinity(), -3.0f}, {4}));
  EXPECT_EQ(calib.compute_amax()->item<float>(), 3.0f);
  EXPECT_EQ(calib.nonfinite(), 2);
}

TEST(MaxCalibrator, ErrorsLeaveTheStateUnchanged) {
  MaxCalibrator calib({.axis = 0});
  calib.collect(Floats({1, 2, 3, 4}, {2, 2}));
  EXPECT_THROW(calib.collect(Floats({1, 2, 3}, {3, 1})), c10::Error);  // amax shape changed
  EXPECT_THROW(calib.collect(Floats({1, 2}, {2, 1, 1})), c10::Error);  // [2,1] -> [2,1,1]
  EXPECT_THROW(calib.collect(at::empty({0, 2})), c10::Error);
  MaxCalibrator out_of_range({.axis = 5});
  EXPECT_THROW(out_of_range.collect(Floats({1, 2}, {2})), c10::ValueError);
  EXPECT_FALSE(out_of_range.compute_amax().has_value());
  EXPECT_THROW(calib.compute_amax({.method = "foo"}), c10::ValueError);
  EXPECT_EQ(Values(*calib.compute_amax({.method = "entropy"})), std::vector<float>({2, 4}));
  EXPECT_THROW(calib.collect(at::tensor({1, 2})), c10::TypeError);
}

TEST(HistogramCalibrator, SearchesMatchTheKernels) {
  torch::manual_seed(3);
  HistogramCalibrator calib({});
  kernels::Histogram reference(kernels::Histogram::Options{});
  for (float scale : {1.0f, 2.0f, 0.5f}) {
    const at::Tensor batch = torch::randn({4000}) * scale;
    calib.collect(batch);
    ASSERT_TRUE(reference.Collect(Values(batch)).ok());
  }
  EXPECT_EQ(calib.calib_hist()->size(0), static_cast<int64_t>(reference.Counts().size()));
  EXPECT_EQ(calib.calib_bin_edges()->size(0), static_cast<int64_t>(reference.Edges().size()));
  EXPECT_EQ(calib.calib_hist()->sum().item<int64_t>(), 12000);
  const struct {
    CalibAmaxArgs args;
    kernels::AmaxMethod method;
  } cases[] = {
      {{.method = "entropy"}, kernels::AmaxMethod::kEntropy},
      {{.method = "entropy", .start_bin = 64, .stride = 2}, kernels::AmaxMethod::kEntropy},
      {{.method = "mse"}, kernels::AmaxMethod::kMse},
      {{.method = "percentile", .percentile = 99.9}, kernels::AmaxMethod::kPercentile},
      {{.method = "max"}, kernels::AmaxMethod::kMax},
  };
  for (const auto& c : cases) {
    const auto want = kernels::HistogramAmax(
        reference, c.method, {.start_bin = c.args.start_bin, .stride = c.args.stride},
        c.args.percentile);
    ASSERT_TRUE(want.ok());
    const at::Tensor amax = *calib.compute_amax(c.args);
    EXPECT_EQ(amax.dim(), 0);
    EXPECT_EQ(amax.item<float>(), want->amax) << c.args.method;
  }
  const std::string str = calib.str();
  EXPECT_EQ(str.rfind("HistogramCalibrator(calib_bin_edges=[0.000, ..., ", 0), 0u) << str;
}

TEST(HistogramCalibrator, ErrorsAndEmptyState) {
  HistogramCalibrator calib({});
  EXPECT_EQ(calib.str(), "HistogramCalibrator(calib_bin_edges=None)");
  EXPECT_FALSE(calib.compute_amax({.method = "entropy"}).has_value());
  EXPECT_THROW(calib.compute_amax({.method = "percentile", .percentile = 100.5}), c10::ValueError);
  EXPECT_THROW(calib.compute_amax({}), c10::ValueError);
  EXPECT_THROW(calib.compute_amax({.method = "foo"}), c10::ValueError);
  EXPECT_THROW(calib.collect(at::empty({0})), c10::ValueError);
  calib.collect(Floats({0.5f, 1.0f, 2.0f}, {3}));
  EXPECT_THROW(calib.compute_amax({.method = "entropy", .start_bin = 4096}), c10::ValueError);
  EXPECT_EQ(calib.compute_amax({.method = "percentile", .percentile = 100.0})->item<float>(),
            2047.0f / 1024);  // the last bin's lower edge, as the reference
  EXPECT_THROW(HistogramCalibrator({.axis = 0}), c10::NotImplementedError);
  EXPECT_THROW(HistogramCalibrator({.torch_hist = false}), c10::NotImplementedError);
  EXPECT_THROW(HistogramCalibrator({.num_bins = 0}), c10::ValueError);
}

TEST(HistogramCalibrator, ZerosFirstThenData) {
  // qcal holds a first batch of zeros and re-bins it (the reference fails on the second batch).
  HistogramCalibrator calib({});
  calib.collect(at::zeros({10}));
  EXPECT_EQ(calib.compute_amax({.method = "entropy"})->item<float>(), 0.0f);
  calib.collect(Floats({1.0f, 2.0f}, {2}));
  EXPECT_EQ((*calib.calib_hist())[0].item<int64_t>(), 10);
  EXPECT_EQ(calib.calib_bin_edges()->size(0), 2049);
}

TEST(MakeCalibrator, FollowsTheDescriptor) {
  EXPECT_EQ(MakeCalibrator(QuantDescriptor())->name(), "MaxCalibrator");
  EXPECT_EQ(MakeCalibrator(QuantDescriptor({.calib_method = "histogram"}))->name(),
            "HistogramCalibrator");
  EXPECT_THROW(MakeCalibrator(QuantDescriptor({.axis = 0, .calib_method = "histogram"})),
               c10::NotImplementedError);
}

}  // namespace
}  // namespace qcal::quant
