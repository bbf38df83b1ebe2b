// The example's network: a small CNN for 28x28 grey images built from quant/'s modules, so
// every convolution, pooling and fully connected layer quantizes its input (and weight).
//
//   features:   0 QuantConv2d(1, 16, 3, padding 1)  1 ReLU  2 QuantMaxPool2d(2)
//               3 QuantConv2d(16, 32, 3, padding 1) 4 ReLU  5 QuantMaxPool2d(2)
//   classifier: 0 QuantLinear(1568, 128)            1 ReLU  2 QuantLinear(128, 10)
//
// Quantizer names are pytorch-quantization's: "features.0._input_quantizer", ...
#ifndef QCAL_EXAMPLES_QAT_FASHION_MNIST_FASHION_CNN_H_
#define QCAL_EXAMPLES_QAT_FASHION_MNIST_FASHION_CNN_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <string>

namespace qcal::examples {

// The reference's PTQ recipe (its calibration tutorial): the input quantizers of QuantConv2d and
// QuantLinear calibrate with a histogram; QuantMaxPool2d inputs and the weights keep their max
// defaults (weights per channel). Call before building the network.
void UseHistogramInputCalibration();

class FashionCnnImpl : public torch::nn::Module {
 public:
  FashionCnnImpl();
  // images [N, 1, 28, 28] float32 (normalised) -> logits [N, 10].
  at::Tensor forward(const at::Tensor& images);

  // Names the layout, for checkpoint keys: a change of layers changes it.
  static std::string Architecture();

 private:
  torch::nn::Sequential features_{nullptr};
  torch::nn::Sequential classifier_{nullptr};
};
TORCH_MODULE(FashionCnn);

}  // namespace qcal::examples

#endif  // QCAL_EXAMPLES_QAT_FASHION_MNIST_FASHION_CNN_H_
