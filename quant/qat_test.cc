// Quantization-aware training of a tiny network: a linear layer whose input and weight pass
// through TensorQuantizers, trained a few SGD steps; the gradients are checked against the
// straight-through estimator written out by hand.
#include <ATen/TensorOperators.h>
#include <ATen/ops/allclose.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/tensor.h>
#include <torch/nn/module.h>
#include <torch/optim/sgd.h>

#include <vector>

#include "gtest/gtest.h"
#include "quant/tensor_quantizer.h"

namespace qcal::quant {
namespace {

at::Tensor Floats(std::vector<float> values, std::vector<int64_t> shape) {
  return at::tensor(values, at::kFloat).reshape(shape);
}

// y = x_q W_q^T + b, quantizers named as pytorch-quantization's QuantLinear names them.
struct TinyQuantLinear : torch::nn::Module {
  TinyQuantLinear()
      : input_quantizer(register_module("_input_quantizer", TensorQuantizer(QuantDescriptor()))),
        weight_quantizer(register_module("_weight_quantizer",
                                         TensorQuantizer(QUANT_DESC_8BIT_LINEAR_WEIGHT_PER_ROW))) {
    weight = register_parameter("weight", Floats({0.5f, -1.0f, 0.25f, 2.0f, 0.1f, -0.3f}, {2, 3}));
    bias = register_parameter("bias", Floats({0.1f, -0.2f}, {2}));
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::linear(input_quantizer(x), weight_quantizer(weight), bias);
  }
  TensorQuantizer input_quantizer;
  TensorQuantizer weight_quantizer;
  at::Tensor weight, bias;
};

// Fake quantization written out: clamp(round(x * s), -128, 127) / s with s = 127 / amax.
at::Tensor ByHand(const at::Tensor& x, const at::Tensor& amax) {
  const at::Tensor s = at::scalar_tensor(127.0f).div(amax);
  return x.mul(s).round().clamp(-128, 127).div(s);
}

TEST(QuantizationAwareTraining, StraightThroughGradientsByHand) {
  TinyQuantLinear net;
  // Fixed ranges, small enough that some inputs and weights lie outside: those get no gradient.
  net.input_quantizer->set_amax(1.0);
  net.weight_quantizer->set_amax(Floats({0.8f, 1.5f}, {2, 1}));
  const at::Tensor x = Floats({0.3f, -1.2f, 0.9f, 2.0f, 0.05f, -0.6f}, {2, 3}).requires_grad_(true);
  const at::Tensor target = Floats({0.0f, 1.0f, -1.0f, 0.5f}, {2, 2});
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.1));

  // By hand: forward on the fake-quantized values, backward with the STE masks.
  const at::Tensor w0 = net.weight.detach().clone();
  const at::Tensor b0 = net.bias.detach().clone();
  const at::Tensor xq = ByHand(x.detach(), at::scalar_tensor(1.0f));
  const at::Tensor wq = ByHand(w0, Floats({0.8f, 1.5f}, {2, 1}));
  const at::Tensor y_hand = at::matmul(xq, wq.t()) + b0;
  const at::Tensor dy = y_hand - target;  // loss = 0.5 * sum((y - target)^2)
  const at::Tensor x_mask = x.detach().abs().le(1.0f).to(at::kFloat);
  const at::Tensor w_mask = w0.abs().le(Floats({0.8f, 1.5f}, {2, 1})).to(at::kFloat);
  const at::Tensor grad_w_hand = at::matmul(dy.t(), xq) * w_mask;
  const at::Tensor grad_x_hand = at::matmul(dy, wq) * x_mask;
  const at::Tensor grad_b_hand = dy.sum(0);
  // The masks are not trivial: x = -1.2 and 2.0, w = -1.0 and 2.0 lie outside their ranges.
  EXPECT_EQ(x_mask.sum().item<float>(), 4.0f);
  EXPECT_EQ(w_mask.sum().item<float>(), 4.0f);

  const at::Tensor y = net.forward(x);
  EXPECT_TRUE(at::allclose(y, y_hand, 1e-6, 1e-6));
  const at::Tensor loss = (y - target).pow(2).sum() * 0.5;
  sgd.zero_grad();
  loss.backward();
  EXPECT_TRUE(at::allclose(net.weight.grad(), grad_w_hand, 1e-6, 1e-6)) << net.weight.grad();
  EXPECT_TRUE(at::allclose(x.grad(), grad_x_hand, 1e-6, 1e-6)) << x.grad();
  EXPECT_TRUE(at::allclose(net.bias.grad(), grad_b_hand, 1e-6, 1e-6));
  // Weights outside the range get exactly no gradient.
  EXPECT_EQ(net.weight.grad()[0][1].item<float>(), 0.0f);
  EXPECT_EQ(net.weight.grad()[1][0].item<float>(), 0.0f);
  sgd.step();
  EXPECT_TRUE(at::allclose(net.weight.detach(), w0 - 0.1 * grad_w_hand, 1e-6, 1e-6));

  // A few more steps lower the loss.
  float previous = loss.item<float>();
  for (int step = 0; step < 5; ++step) {
    sgd.zero_grad();
    const at::Tensor l = (net.forward(x.detach()) - target).pow(2).sum() * 0.5;
    l.backward();
    sgd.step();
    EXPECT_LT(l.item<float>(), previous) << "step " << step;
    previous = l.item<float>();
  }
}

TEST(QuantizationAwareTraining, DynamicRangesPassEveryGradient) {
  TinyQuantLinear net;  // no amax set: max|x| per tensor, max|w| per row
  const at::Tensor x = Floats({0.3f, -1.2f, 0.9f}, {1, 3}).requires_grad_(true);
  net.forward(x).sum().backward();
  // Every |x| <= max|x|: the gradient is the unmasked one, sum over outputs of W_q.
  const at::Tensor wq = ByHand(net.weight.detach(), net.weight.detach().abs().amax(1, true));
  EXPECT_TRUE(at::allclose(x.grad(), wq.sum(0, true), 1e-6, 1e-6)) << x.grad();
  EXPECT_TRUE(net.weight.grad().ne(0).all().item<bool>());
}

}  // namespace
}  // namespace qcal::quant
