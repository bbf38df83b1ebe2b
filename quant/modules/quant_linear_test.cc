// QuantLinear against torch::nn::Linear: the same layer with the quantizers disabled, fake-
// quantized input and per-row weight (by hand) with them enabled, and the reference's defaults.
#include "quant/modules/quant_linear.h"

#include <c10/util/Exception.h>

#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quant/tensor_quant.h"

namespace qcal::quant {
namespace {

torch::nn::Linear Twin(const QuantLinear& quant, const at::Tensor& weight) {
  torch::nn::Linear twin(quant->options);
  torch::NoGradGuard no_grad;
  twin->weight.copy_(weight);
  twin->bias.copy_(quant->bias);
  return twin;
}

TEST(QuantLinear, DisabledQuantizersGiveTheFloatLayer) {
  torch::manual_seed(5);
  QuantLinear quant(6, 4);
  torch::nn::Linear twin = Twin(quant, quant->weight);
  quant->input_quantizer()->disable();
  quant->weight_quantizer()->disable();
  for (const at::Tensor& x : {torch::randn({3, 6}), torch::randn({2, 5, 6}), torch::randn({6})}) {
    EXPECT_TRUE(torch::equal(quant(x), twin(x))) << x.sizes();
  }
}

TEST(QuantLinear, EnabledQuantizersQuantizeInputAndWeightPerRow) {
  torch::manual_seed(6);
  QuantLinear quant(6, 4);
  quant->input_quantizer()->set_amax(1.5);  // some inputs clip
  const at::Tensor x = torch::randn({3, 6});
  const at::Tensor w = quant->weight.detach();
  const at::Tensor xq = fake_tensor_quant(x, torch::scalar_tensor(1.5), 8, false, false);
  const at::Tensor wq = fake_tensor_quant(w, w.abs().amax({1}, true), 8, false, false);
  ASSERT_TRUE(x.abs().gt(1.5).any().item<bool>());
  EXPECT_TRUE(torch::equal(quant(x), Twin(quant, wq)(xq)));
}

TEST(QuantLinear, ClassDefaultsAndOverrides) {
  EXPECT_EQ(QuantLinearImpl::default_quant_desc_input(), QUANT_DESC_8BIT_PER_TENSOR);
  EXPECT_EQ(QuantLinearImpl::default_quant_desc_weight(), QUANT_DESC_8BIT_LINEAR_WEIGHT_PER_ROW);
  const QuantDescriptor histogram({.calib_method = "histogram"});
  QuantLinearImpl::set_default_quant_desc_input(histogram);
  QuantLinear changed(2, 2);
  QuantLinearImpl::set_default_quant_desc_input(QUANT_DESC_8BIT_PER_TENSOR);
  EXPECT_EQ(changed->input_quantizer()->descriptor(), histogram);
  EXPECT_EQ(changed->weight_quantizer()->descriptor(), QUANT_DESC_8BIT_LINEAR_WEIGHT_PER_ROW);
  QuantLinear given(torch::nn::LinearOptions(2, 2).bias(false),
                    QuantMixinOptions{.quant_desc_weight = QuantDescriptor({.num_bits = 4})});
  EXPECT_EQ(given->weight_quantizer()->num_bits(), 4);
  EXPECT_EQ(given->input_quantizer()->descriptor(), QUANT_DESC_8BIT_PER_TENSOR);
}

TEST(QuantLinear, NamesAndPrinting) {
  QuantLinear fc(3, 2);
  std::vector<std::string> names;
  for (const auto& item : fc->named_parameters()) names.push_back(item.key());
  EXPECT_EQ(names, std::vector<std::string>({"weight", "bias"}));
  names.clear();
  for (const auto& item : fc->named_children()) names.push_back(item.key());
  EXPECT_EQ(names, std::vector<std::string>({"_input_quantizer", "_weight_quantizer"}));
  std::ostringstream header;
  fc->pretty_print(header);
  EXPECT_EQ(header.str(), "qcal::quant::QuantLinear(in_features=3, out_features=2, bias=true)");
  EXPECT_THROW(fc->clone(), c10::NotImplementedError);
}

}  // namespace
}  // namespace qcal::quant
