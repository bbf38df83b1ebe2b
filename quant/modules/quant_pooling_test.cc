// The nine quantized pooling modules against their torch::nn twins: the same pooling with the
// input quantizer disabled, pooling of the fake-quantized input (by hand) with it enabled, and
// the reference's default and names.
#include "quant/modules/quant_pooling.h"

#include <c10/util/Exception.h>

#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quant/tensor_quant.h"

namespace qcal::quant {
namespace {

template <typename QuantT, typename FloatT, size_t Dims, typename OptionsT>
struct PoolCase {
  using Quant = QuantT;
  using Float = FloatT;
  using Options = OptionsT;
  static constexpr size_t D = Dims;
};

template <size_t D>
torch::nn::MaxPoolOptions<D> MaxOptions() {
  return torch::nn::MaxPoolOptions<D>(3).stride(2).padding(1);
}
template <size_t D>
torch::nn::AvgPoolOptions<D> AvgOptions() {
  return torch::nn::AvgPoolOptions<D>(3).stride(2).padding(1).count_include_pad(false);
}

template <typename Case>
class QuantPoolTest : public testing::Test {
 protected:
  using Quant = typename Case::Quant;
  using Float = typename Case::Float;
  static constexpr size_t D = Case::D;

  QuantPoolTest() { torch::manual_seed(11); }

  static typename Case::Options Options() {
    if constexpr (std::is_same_v<typename Case::Options, torch::nn::MaxPoolOptions<D>>) {
      return MaxOptions<D>();
    } else if constexpr (std::is_same_v<typename Case::Options, torch::nn::AvgPoolOptions<D>>) {
      return AvgOptions<D>();
    } else {
      return typename Case::Options(3);  // adaptive: output size 3 in every dimension
    }
  }
  static at::Tensor Input() {
    std::vector<int64_t> shape = {2, 3};
    shape.insert(shape.end(), D, 7);
    return torch::randn(shape);
  }
};

using PoolCases =
    testing::Types<PoolCase<QuantMaxPool1d, torch::nn::MaxPool1d, 1, torch::nn::MaxPool1dOptions>,
                   PoolCase<QuantMaxPool2d, torch::nn::MaxPool2d, 2, torch::nn::MaxPool2dOptions>,
                   PoolCase<QuantMaxPool3d, torch::nn::MaxPool3d, 3, torch::nn::MaxPool3dOptions>,
                   PoolCase<QuantAvgPool1d, torch::nn::AvgPool1d, 1, torch::nn::AvgPool1dOptions>,
                   PoolCase<QuantAvgPool2d, torch::nn::AvgPool2d, 2, torch::nn::AvgPool2dOptions>,
                   PoolCase<QuantAvgPool3d, torch::nn::AvgPool3d, 3, torch::nn::AvgPool3dOptions>,
                   PoolCase<QuantAdaptiveAvgPool1d, torch::nn::AdaptiveAvgPool1d, 1,
                            torch::nn::AdaptiveAvgPool1dOptions>,
                   PoolCase<QuantAdaptiveAvgPool2d, torch::nn::AdaptiveAvgPool2d, 2,
                            torch::nn::AdaptiveAvgPool2dOptions>,
                   PoolCase<QuantAdaptiveAvgPool3d, torch::nn::AdaptiveAvgPool3d, 3,
                            torch::nn::AdaptiveAvgPool3dOptions>>;
TYPED_TEST_SUITE(QuantPoolTest, PoolCases);

TYPED_TEST(QuantPoolTest, DisabledQuantizerGivesTheFloatPooling) {
  typename TestFixture::Quant quant(TestFixture::Options());
  typename TestFixture::Float twin(TestFixture::Options());
  quant->input_quantizer()->disable();
  const at::Tensor x = TestFixture::Input();
  EXPECT_TRUE(torch::equal(quant(x), twin(x)));
}

TYPED_TEST(QuantPoolTest, EnabledQuantizerPoolsTheFakeQuantizedInput) {
  typename TestFixture::Quant quant(TestFixture::Options());
  typename TestFixture::Float twin(TestFixture::Options());
  quant->input_quantizer()->set_amax(2.0);
  const at::Tensor x = TestFixture::Input();
  const at::Tensor xq = fake_tensor_quant(x, torch::scalar_tensor(2.0), 8, false, false);
  ASSERT_FALSE(torch::equal(twin(xq), twin(x)));
  EXPECT_TRUE(torch::equal(quant(x), twin(xq)));
}

TYPED_TEST(QuantPoolTest, OnlyAnInputQuantizerWithThePerTensorDefault) {
  using Impl = typename TestFixture::Quant::ContainedType;
  EXPECT_EQ(Impl::default_quant_desc_input(), QUANT_DESC_8BIT_PER_TENSOR);
  typename TestFixture::Quant quant(TestFixture::Options());
  std::vector<std::string> names;
  for (const auto& item : quant->named_modules("pool")) names.push_back(item.key());
  EXPECT_EQ(names, std::vector<std::string>({"pool", "pool._input_quantizer"}));
  EXPECT_EQ(quant->input_quantizer()->descriptor(), QUANT_DESC_8BIT_PER_TENSOR);
  EXPECT_TRUE(quant->parameters().empty());
}

TEST(QuantPool, MaxPoolWithIndicesQuantizesToo) {
  torch::manual_seed(12);
  QuantMaxPool2d quant(2);  // from the kernel size, as torch::nn::MaxPool2d(2)
  torch::nn::MaxPool2d twin(2);
  quant->input_quantizer()->set_amax(0.5);
  const at::Tensor x = torch::randn({1, 2, 4, 4});
  const auto [values, indices] = quant->forward_with_indices(x);
  const auto [expected_values, expected_indices] =
      twin->forward_with_indices(fake_tensor_quant(x, torch::scalar_tensor(0.5), 8, false, false));
  EXPECT_TRUE(torch::equal(values, expected_values));
  EXPECT_TRUE(torch::equal(indices, expected_indices));
}

TEST(QuantPool, SetDefaultIsPerClass) {
  const QuantDescriptor histogram({.calib_method = "histogram"});
  QuantMaxPool2dImpl::set_default_quant_desc_input(histogram);
  QuantMaxPool2d changed(2);
  QuantAvgPool2d other(2);
  QuantMaxPool2dImpl::set_default_quant_desc_input(QUANT_DESC_8BIT_PER_TENSOR);
  EXPECT_EQ(changed->input_quantizer()->descriptor(), histogram);
  EXPECT_EQ(other->input_quantizer()->descriptor(), QUANT_DESC_8BIT_PER_TENSOR);
  QuantAdaptiveAvgPool2d given(torch::nn::AdaptiveAvgPool2dOptions({1, 1}),
                               QuantInputOptions{.quant_desc_input = histogram});
  EXPECT_EQ(given->input_quantizer()->descriptor(), histogram);
}

TEST(QuantPool, Printing) {
  QuantAdaptiveAvgPool2d gap(torch::nn::AdaptiveAvgPool2dOptions({1, 1}));
  std::ostringstream header;
  gap->pretty_print(header);
  EXPECT_EQ(header.str(), "qcal::quant::QuantAdaptiveAvgPool2d(output_size=[1, 1])");
  EXPECT_THROW(gap->clone(), c10::NotImplementedError);
}

}  // namespace
}  // namespace qcal::quant
