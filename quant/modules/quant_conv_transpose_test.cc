// QuantConvTranspose1d/2d/3d against torch::nn::ConvTranspose1d/2d/3d: the same operation with
// the quantizers disabled, fake-quantized input and weight (by hand) with them enabled,
// output_size handling and the errors that leave the calibrators untouched.
#include "quant/modules/quant_conv_transpose.h"

#include <c10/util/Exception.h>

#include <vector>

#include "gtest/gtest.h"
#include "quant/tensor_quant.h"

namespace qcal::quant {
namespace {

template <typename QuantT, typename FloatT, size_t Dims>
struct ConvTransposeCase {
  using Quant = QuantT;
  using Float = FloatT;
  static constexpr size_t D = Dims;
};

template <typename Case>
class QuantConvTransposeTest : public testing::Test {
 protected:
  using Quant = typename Case::Quant;
  using Float = typename Case::Float;
  static constexpr size_t D = Case::D;

  QuantConvTransposeTest() { torch::manual_seed(99); }

  // 4 -> 3 channels, kernel 3, stride 2, padding 1: weight [4, 3, 3, ...].
  static torch::nn::ConvTransposeOptions<D> Options() {
    return torch::nn::ConvTransposeOptions<D>(4, 3, 3).stride(2).padding(1);
  }
  static at::Tensor Input() {
    std::vector<int64_t> shape = {2, 4};
    shape.insert(shape.end(), D, 5);
    return torch::randn(shape);
  }
  static Float Twin(const Quant& quant, const at::Tensor& weight) {
    Float twin(Options());
    torch::NoGradGuard no_grad;
    twin->weight.copy_(weight);
    twin->bias.copy_(quant->bias);
    return twin;
  }
};

using ConvTransposeCases =
    testing::Types<ConvTransposeCase<QuantConvTranspose1d, torch::nn::ConvTranspose1d, 1>,
                   ConvTransposeCase<QuantConvTranspose2d, torch::nn::ConvTranspose2d, 2>,
                   ConvTransposeCase<QuantConvTranspose3d, torch::nn::ConvTranspose3d, 3>>;
TYPED_TEST_SUITE(QuantConvTransposeTest, ConvTransposeCases);

TYPED_TEST(QuantConvTransposeTest, DisabledQuantizersGiveTheFloatOperation) {
  typename TestFixture::Quant quant(TestFixture::Options());
  auto twin = TestFixture::Twin(quant, quant->weight);
  quant->input_quantizer()->disable();
  quant->weight_quantizer()->disable();
  const at::Tensor x = TestFixture::Input();
  EXPECT_TRUE(torch::equal(quant(x), twin(x)));
  // output_size picks output_padding 1 in every dimension: 2 * (5 - 1) - 2 + 3 + 1 = 10.
  const std::vector<int64_t> size(TestFixture::D, 10);
  const at::Tensor y = quant(x, at::IntArrayRef(size));
  EXPECT_EQ(y.size(2), 10);
  EXPECT_TRUE(torch::equal(y, twin(x, at::IntArrayRef(size))));
}

TYPED_TEST(QuantConvTransposeTest, EnabledQuantizersQuantizeInputAndWeightFirst) {
  typename TestFixture::Quant quant(TestFixture::Options());
  const at::Tensor x = TestFixture::Input();
  const at::Tensor w = quant->weight.detach();
  // Axis 0 of a transposed convolution's weight: one amax per input channel.
  std::vector<int64_t> reduce(TestFixture::D + 1);
  for (size_t i = 0; i < reduce.size(); ++i) reduce[i] = static_cast<int64_t>(i) + 1;
  const at::Tensor xq = fake_tensor_quant(x, x.abs().max(), 8, false, false);
  const at::Tensor wq = fake_tensor_quant(w, w.abs().amax(reduce, true), 8, false, false);
  ASSERT_FALSE(torch::equal(wq, w));
  EXPECT_TRUE(torch::equal(quant(x), TestFixture::Twin(quant, wq)(xq)));
}

TYPED_TEST(QuantConvTransposeTest, ClassDefaultsAreThePerChannelDescriptors) {
  using Impl = typename TestFixture::Quant::ContainedType;
  EXPECT_EQ(Impl::default_quant_desc_input(), QUANT_DESC_8BIT_PER_TENSOR);
  EXPECT_EQ(Impl::default_quant_desc_weight().axis(), QuantAxis(0));
  typename TestFixture::Quant quant(TestFixture::Options());
  EXPECT_EQ(quant->weight_quantizer()->descriptor(), Impl::default_quant_desc_weight());
}

TEST(QuantConvTranspose, EachClassHasItsOwnWeightDefault) {
  EXPECT_EQ(QuantConvTranspose1dImpl::default_quant_desc_weight(),
            QUANT_DESC_8BIT_CONVTRANSPOSE1D_WEIGHT_PER_CHANNEL);
  EXPECT_EQ(QuantConvTranspose2dImpl::default_quant_desc_weight(),
            QUANT_DESC_8BIT_CONVTRANSPOSE2D_WEIGHT_PER_CHANNEL);
  EXPECT_EQ(QuantConvTranspose3dImpl::default_quant_desc_weight(),
            QUANT_DESC_8BIT_CONVTRANSPOSE3D_WEIGHT_PER_CHANNEL);
  QuantConvTranspose2dImpl::set_default_quant_desc_weight(QuantDescriptor({.num_bits = 4}));
  QuantConvTranspose2d changed(1, 2, 3);
  QuantConvTranspose2dImpl::set_default_quant_desc_weight(
      QUANT_DESC_8BIT_CONVTRANSPOSE2D_WEIGHT_PER_CHANNEL);
  EXPECT_EQ(changed->weight_quantizer()->num_bits(), 4);
  EXPECT_EQ(QuantConvTranspose1d(1, 2, 3)->weight_quantizer()->num_bits(), 8);
}

TEST(QuantConvTranspose, OutputSizeWithBatchAndChannelEntriesAndDilation) {
  torch::manual_seed(3);
  const auto options = torch::nn::ConvTranspose2dOptions(2, 2, 3).stride(3).dilation(2);
  QuantConvTranspose2d quant(options);
  quant->input_quantizer()->disable();
  quant->weight_quantizer()->disable();
  const at::Tensor x = torch::randn({1, 2, 4, 4});
  // min = (4 - 1) * 3 + 2 * (3 - 1) + 1 = 14, max = 16.
  EXPECT_EQ(quant(x, at::IntArrayRef({1, 2, 16, 14})).sizes(), at::IntArrayRef({1, 2, 16, 14}));
  EXPECT_THROW(quant(x, at::IntArrayRef({17, 14})), c10::ValueError);
  EXPECT_THROW(quant(x, at::IntArrayRef({13, 14})), c10::ValueError);
  EXPECT_THROW(quant(x, at::IntArrayRef({14, 14, 14})), c10::ValueError);
}

TEST(QuantConvTranspose, ErrorsComeBeforeCalibration) {
  QuantConvTranspose2d quant(torch::nn::ConvTranspose2dOptions(2, 2, 3));
  quant->input_quantizer()->disable_quant();
  quant->input_quantizer()->enable_calib();
  EXPECT_THROW(quant(torch::ones({1, 2, 4, 4}), at::IntArrayRef({40, 40})), c10::ValueError);
  EXPECT_FALSE(quant->input_quantizer()->calibrator()->compute_amax().has_value());

  QuantConvTranspose2d reflect(
      torch::nn::ConvTranspose2dOptions(2, 2, 3).padding_mode(torch::kReflect));
  EXPECT_THROW(reflect(torch::ones({1, 2, 4, 4})), c10::ValueError);
}

TEST(QuantConvTranspose, NamesAndPrinting) {
  QuantConvTranspose2d up(torch::nn::ConvTranspose2dOptions(4, 2, 2).stride(2));
  std::vector<std::string> names;
  for (const auto& item : up->named_children()) names.push_back(item.key());
  EXPECT_EQ(names, std::vector<std::string>({"_input_quantizer", "_weight_quantizer"}));
  std::ostringstream header;
  up->pretty_print(header);
  EXPECT_EQ(header.str(),
            "qcal::quant::QuantConvTranspose2d(4, 2, kernel_size=[2, 2], stride=[2, 2])");
  EXPECT_THROW(up->clone(), c10::NotImplementedError);
}

}  // namespace
}  // namespace qcal::quant
