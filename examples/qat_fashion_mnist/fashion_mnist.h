// Fashion-MNIST as tensors: 60,000 training and 10,000 test images of 28x28 grey pixels in 10
// classes, read from Debian's dataset-fashion-mnist files (idx_file.h).
#ifndef QCAL_EXAMPLES_QAT_FASHION_MNIST_FASHION_MNIST_H_
#define QCAL_EXAMPLES_QAT_FASHION_MNIST_FASHION_MNIST_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace qcal::examples {

// Where Debian's dataset-fashion-mnist package puts the files.
inline constexpr char kDebianFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

struct Dataset {
  // [N, 1, 28, 28] float32: pixel / 255, in [0, 1], as in examples/fashion_mnist. Not
  // mean-centred: centring moves the background (most pixels) to a spike in |x| away from 0,
  // which a clipping calibration of the first layer's input may cut just above; at 0 it sits in
  // the histogram's first bin.
  at::Tensor images;
  at::Tensor labels;  // [N] int64 in [0, 9]
  int64_t size() const { return labels.size(0); }
};

// The training (train=true) or test split of `dir`, its first `limit` images (0: all).
// Errors: ReadIdxGz's, and DATA_LOSS when the images are not N x 28 x 28, the labels not N
// values in [0, 9], or their counts differ.
absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, bool train, int64_t limit = 0);

}  // namespace qcal::examples

#endif  // QCAL_EXAMPLES_QAT_FASHION_MNIST_FASHION_MNIST_H_
