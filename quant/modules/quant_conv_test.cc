// QuantConv1d/2d/3d against torch::nn::Conv1d/2d/3d: the same convolution when the quantizers
// are disabled, the convolution of fake-quantized input and weight (quantized by hand with
// fake_tensor_quant) when they are enabled, and the reference's class defaults and names.
#include "quant/modules/quant_conv.h"

#include <c10/util/Exception.h>

#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quant/tensor_quant.h"

namespace qcal::quant {
namespace {

template <typename QuantT, typename FloatT, size_t Dims>
struct ConvCase {
  using Quant = QuantT;
  using Float = FloatT;
  static constexpr size_t D = Dims;
};

template <typename Case>
class QuantConvTest : public testing::Test {
 protected:
  using Quant = typename Case::Quant;
  using Float = typename Case::Float;
  static constexpr size_t D = Case::D;

  QuantConvTest() { torch::manual_seed(2024); }

  // 3 -> 4 channels, kernel 3, stride 2, padding 1.
  static torch::nn::ConvOptions<D> Options() {
    return torch::nn::ConvOptions<D>(3, 4, 3).stride(2).padding(1);
  }
  // [2, 3, 7, ...] with D spatial dimensions.
  static at::Tensor Input() {
    std::vector<int64_t> shape = {2, 3};
    shape.insert(shape.end(), D, 7);
    return torch::randn(shape);
  }
  // A float twin holding `quant`'s bias and `weight`.
  static Float Twin(const Quant& quant, const at::Tensor& weight) {
    Float twin(Options());
    torch::NoGradGuard no_grad;
    twin->weight.copy_(weight);
    twin->bias.copy_(quant->bias);
    return twin;
  }
};

using ConvCases = testing::Types<ConvCase<QuantConv1d, torch::nn::Conv1d, 1>,
                                 ConvCase<QuantConv2d, torch::nn::Conv2d, 2>,
                                 ConvCase<QuantConv3d, torch::nn::Conv3d, 3>>;
TYPED_TEST_SUITE(QuantConvTest, ConvCases);

TYPED_TEST(QuantConvTest, DisabledQuantizersGiveTheFloatConvolution) {
  typename TestFixture::Quant quant(TestFixture::Options());
  auto twin = TestFixture::Twin(quant, quant->weight);
  quant->input_quantizer()->disable();
  quant->weight_quantizer()->disable();
  const at::Tensor x = TestFixture::Input();
  EXPECT_TRUE(torch::equal(quant(x), twin(x)));
}

TYPED_TEST(QuantConvTest, EnabledQuantizersQuantizeInputAndWeightFirst) {
  typename TestFixture::Quant quant(TestFixture::Options());
  const at::Tensor x = TestFixture::Input();
  const at::Tensor w = quant->weight.detach();
  // Dynamic amax: max |x| per tensor, max |w| per output channel (axis 0); full range [-128, 127].
  std::vector<int64_t> reduce(TestFixture::D + 1);
  for (size_t i = 0; i < reduce.size(); ++i) reduce[i] = static_cast<int64_t>(i) + 1;
  const at::Tensor xq = fake_tensor_quant(x, x.abs().max(), 8, false, false);
  const at::Tensor wq = fake_tensor_quant(w, w.abs().amax(reduce, true), 8, false, false);
  ASSERT_FALSE(torch::equal(xq, x));
  ASSERT_FALSE(torch::equal(wq, w));
  const at::Tensor expected = TestFixture::Twin(quant, wq)(xq);
  EXPECT_TRUE(torch::equal(quant(x), expected));
  EXPECT_FALSE(torch::equal(quant(x), TestFixture::Twin(quant, w)(x)));
}

TYPED_TEST(QuantConvTest, ClassDefaultsAreThePerChannelDescriptors) {
  using Impl = typename TestFixture::Quant::ContainedType;
  const QuantDescriptor weight_default = Impl::default_quant_desc_weight();
  EXPECT_EQ(Impl::default_quant_desc_input(), QUANT_DESC_8BIT_PER_TENSOR);
  EXPECT_EQ(weight_default.axis(), QuantAxis(0));
  EXPECT_EQ(weight_default.num_bits(), 8);
  typename TestFixture::Quant quant(TestFixture::Options());
  EXPECT_EQ(quant->input_quantizer()->descriptor(), QUANT_DESC_8BIT_PER_TENSOR);
  EXPECT_EQ(quant->weight_quantizer()->descriptor(), weight_default);
}

TEST(QuantConv, EachClassHasItsOwnWeightDefault) {
  EXPECT_EQ(QuantConv1dImpl::default_quant_desc_weight(),
            QUANT_DESC_8BIT_CONV1D_WEIGHT_PER_CHANNEL);
  EXPECT_EQ(QuantConv2dImpl::default_quant_desc_weight(),
            QUANT_DESC_8BIT_CONV2D_WEIGHT_PER_CHANNEL);
  EXPECT_EQ(QuantConv3dImpl::default_quant_desc_weight(),
            QUANT_DESC_8BIT_CONV3D_WEIGHT_PER_CHANNEL);
}

TEST(QuantConv, SetDefaultChangesLaterModulesOfThatClassOnly) {
  const QuantDescriptor histogram({.calib_method = "histogram"});
  QuantConv2d before(1, 2, 3);
  QuantConv2dImpl::set_default_quant_desc_input(histogram);
  QuantConv2d after(1, 2, 3);
  QuantConv1d other(1, 2, 3);
  QuantConv2dImpl::set_default_quant_desc_input(QUANT_DESC_8BIT_PER_TENSOR);
  EXPECT_EQ(after->input_quantizer()->descriptor(), histogram);
  EXPECT_EQ(after->input_quantizer()->calibrator()->name(), "HistogramCalibrator");
  EXPECT_EQ(before->input_quantizer()->descriptor(), QUANT_DESC_8BIT_PER_TENSOR);
  EXPECT_EQ(other->input_quantizer()->descriptor(), QUANT_DESC_8BIT_PER_TENSOR);
}

TEST(QuantConv, GivenDescriptorsOverrideTheDefaults) {
  const QuantDescriptor input({.num_bits = 4, .is_unsigned = true});
  const QuantDescriptor weight({.num_bits = 6});
  QuantConv2d conv(torch::nn::Conv2dOptions(1, 2, 3),
                   QuantMixinOptions{.quant_desc_input = input, .quant_desc_weight = weight});
  EXPECT_EQ(conv->input_quantizer()->descriptor(), input);
  EXPECT_EQ(conv->weight_quantizer()->descriptor(), weight);
  QuantConv2d only_weight(torch::nn::Conv2dOptions(1, 2, 3),
                          QuantMixinOptions{.quant_desc_weight = weight});
  EXPECT_EQ(only_weight->input_quantizer()->descriptor(), QUANT_DESC_8BIT_PER_TENSOR);
}

TEST(QuantConv, NamesMatchPytorchQuantization) {
  QuantConv2d conv(torch::nn::Conv2dOptions(1, 2, 3).bias(false));
  std::vector<std::string> modules;
  for (const auto& item : conv->named_modules("conv1")) modules.push_back(item.key());
  EXPECT_EQ(modules, std::vector<std::string>(
                         {"conv1", "conv1._input_quantizer", "conv1._weight_quantizer"}));
  std::vector<std::string> parameters;
  for (const auto& item : conv->named_parameters()) parameters.push_back(item.key());
  EXPECT_EQ(parameters, std::vector<std::string>({"weight"}));
}

TEST(QuantConv, PrintsAsItsFloatTwinWithQuantizers) {
  QuantConv2d conv(torch::nn::Conv2dOptions(1, 2, 3).padding(1));
  std::ostringstream printed;
  printed << *conv;
  EXPECT_EQ(printed.str(),
            "qcal::quant::QuantConv2d(1, 2, kernel_size=[3, 3], stride=[1, 1], padding=[1, 1])(\n"
            "  (_input_quantizer): TensorQuantizer(8bit fake per-tensor amax=dynamic "
            "calibrator=MaxCalibrator scale=1.0 quant)\n"
            "  (_weight_quantizer): TensorQuantizer(8bit fake axis=0 amax=dynamic "
            "calibrator=MaxCalibrator scale=1.0 quant)\n"
            ")");
}

TEST(QuantConv, CircularPaddingQuantizesTheInputBeforePadding) {
  torch::manual_seed(7);
  const auto options = torch::nn::Conv2dOptions(2, 3, 3).padding(1).padding_mode(torch::kCircular);
  QuantConv2d quant(options);
  torch::nn::Conv2d twin(options);
  quant->input_quantizer()->set_amax(1.0);  // some inputs lie outside and clip
  const at::Tensor x = torch::randn({1, 2, 5, 5});
  const at::Tensor w = quant->weight.detach();
  {
    torch::NoGradGuard no_grad;
    twin->weight.copy_(fake_tensor_quant(w, w.abs().amax({1, 2, 3}, true), 8, false, false));
    twin->bias.copy_(quant->bias);
  }
  const at::Tensor xq = fake_tensor_quant(x, torch::scalar_tensor(1.0), 8, false, false);
  EXPECT_TRUE(torch::equal(quant(x), twin(xq)));
  // The calibrator sees the tensor the module was given, not the padded one.
  quant->input_quantizer()->disable_quant();
  quant->input_quantizer()->enable_calib();
  quant(x * 3);
  quant->input_quantizer()->load_calib_amax();
  EXPECT_EQ(quant->input_quantizer()->amax()->item<float>(), (x * 3).abs().max().item<float>());
}

TEST(QuantConv, CloneIsRefusedWithAClearError) {
  QuantConv2d conv(1, 2, 3);
  try {
    conv->clone();
    FAIL() << "clone() did not throw";
  } catch (const c10::NotImplementedError& e) {
    EXPECT_NE(std::string(e.what()).find("QuantConv2dImpl cannot be cloned"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace qcal::quant
