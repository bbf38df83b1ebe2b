#include "examples/qat_fashion_mnist/training.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numbers>

namespace qcal::examples {

void Train(FashionCnn& model, const Dataset& data, const TrainOptions& options) {
  model->train();
  torch::optim::SGD sgd(model->parameters(),
                        torch::optim::SGDOptions(options.lr).momentum(options.momentum));
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const int64_t n = data.size();
  at::Tensor order;
  int64_t next = n;  // position in `order`; n forces a shuffle
  const auto start = std::chrono::steady_clock::now();
  double loss_sum = 0;
  int64_t loss_count = 0;
  for (int64_t step = 0; step < options.steps; ++step) {
    double lr = options.lr;
    if (options.cosine && options.steps > 1) {
      const double t = static_cast<double>(step) / static_cast<double>(options.steps - 1);
      lr = options.final_lr +
           (options.lr - options.final_lr) * (1 + std::cos(std::numbers::pi * t)) / 2;
    }
    for (auto& group : sgd.param_groups()) {
      static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
    }
    if (next + options.batch_size > n) {
      order = at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
      next = 0;
    }
    const at::Tensor index = order.slice(0, next, next + options.batch_size);
    next += options.batch_size;
    sgd.zero_grad();
    const at::Tensor loss = torch::nn::functional::cross_entropy(
        model->forward(data.images.index_select(0, index)), data.labels.index_select(0, index));
    loss.backward();
    sgd.step();
    loss_sum += loss.item<double>();
    ++loss_count;
    if ((step + 1) % options.log_every == 0 || step + 1 == options.steps) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("[%s] step %lld/%lld epoch %.2f loss %.4f lr %.6f (%.0f img/s)\n",
                  options.label.c_str(), static_cast<long long>(step + 1),
                  static_cast<long long>(options.steps),
                  static_cast<double>((step + 1) * options.batch_size) / static_cast<double>(n),
                  loss_sum / static_cast<double>(loss_count), lr,
                  static_cast<double>((step + 1) * options.batch_size) / seconds);
      std::fflush(stdout);
      loss_sum = 0;
      loss_count = 0;
    }
  }
  model->eval();
}

double Top1(FashionCnn& model, const Dataset& data, int64_t batch_size) {
  model->eval();
  torch::NoGradGuard no_grad;
  int64_t correct = 0;
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const int64_t end = std::min(begin + batch_size, data.size());
    const at::Tensor predicted = model->forward(data.images.slice(0, begin, end)).argmax(1);
    correct += predicted.eq(data.labels.slice(0, begin, end)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

void RunCalibrationBatches(FashionCnn& model, const Dataset& data, int64_t images,
                           int64_t batch_size) {
  model->eval();
  torch::NoGradGuard no_grad;
  const int64_t n = std::min(images, data.size());
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    model->forward(data.images.slice(0, begin, std::min(begin + batch_size, n)));
  }
}

}  // namespace qcal::examples
