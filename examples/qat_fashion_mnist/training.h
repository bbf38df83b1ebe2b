// Training, evaluation and calibration passes of the example (quant/'s reference recipe on
// LibTorch): SGD with momentum and a constant or cosine-annealed learning rate, top-1 accuracy,
// and the calibration forward passes of pytorch-quantization's collect_stats.
#ifndef QCAL_EXAMPLES_QAT_FASHION_MNIST_TRAINING_H_
#define QCAL_EXAMPLES_QAT_FASHION_MNIST_TRAINING_H_

#include <cstdint>
#include <string>

#include "examples/qat_fashion_mnist/fashion_cnn.h"
#include "examples/qat_fashion_mnist/fashion_mnist.h"

namespace qcal::examples {

struct TrainOptions {
  // Optimizer steps; each takes the next `batch_size` images of a shuffled pass over the data
  // (reshuffled when a pass ends).
  int64_t steps = 0;
  int64_t batch_size = 64;
  // Learning rate of the first step. With cosine, it anneals to final_lr at the last step
  // (lr_t = final_lr + (lr - final_lr) * (1 + cos(pi * t / (steps - 1))) / 2); otherwise stays.
  double lr = 0.02;
  double final_lr = 0.02;
  bool cosine = false;
  double momentum = 0.9;
  uint64_t seed = 1;
  // Progress lines: "[label] step 200/2814 epoch 0.21 loss 0.4812 lr 0.0200 (1830 img/s)".
  std::string label = "train";
  int64_t log_every = 200;
};

// Trains `model` in place on `data` (cross-entropy loss), printing progress to stdout.
void Train(FashionCnn& model, const Dataset& data, const TrainOptions& options);

// Fraction of `data` whose arg-max logit is the label (eval mode, no gradient).
double Top1(FashionCnn& model, const Dataset& data, int64_t batch_size = 500);

// Forward passes over the first `images` images of `data` (no gradient), as calibration batches:
// the caller puts the quantizers in calibration mode first (quant/modules/model_quantizers.h).
void RunCalibrationBatches(FashionCnn& model, const Dataset& data, int64_t images,
                           int64_t batch_size);

}  // namespace qcal::examples

#endif  // QCAL_EXAMPLES_QAT_FASHION_MNIST_TRAINING_H_
