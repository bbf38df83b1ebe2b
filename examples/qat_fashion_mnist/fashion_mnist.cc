#include "examples/qat_fashion_mnist/fashion_mnist.h"

#include <ATen/ops/from_blob.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "examples/qat_fashion_mnist/idx_file.h"

namespace qcal::examples {

absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, bool train, int64_t limit) {
  const std::string prefix = absl::StrCat(dir, "/", train ? "train" : "t10k");
  absl::StatusOr<IdxArray> images = ReadIdxGz(prefix + "-images-idx3-ubyte.gz");
  if (!images.ok()) return images.status();
  absl::StatusOr<IdxArray> labels = ReadIdxGz(prefix + "-labels-idx1-ubyte.gz");
  if (!labels.ok()) return labels.status();
  if (images->shape.size() != 3 || images->shape[1] != 28 || images->shape[2] != 28) {
    return absl::DataLossError(absl::StrCat(prefix, "-images: expected N x 28 x 28 images"));
  }
  if (labels->shape.size() != 1 || labels->shape[0] != images->shape[0]) {
    return absl::DataLossError(
        absl::StrCat(prefix, "-labels: expected one label per image (", images->shape[0], ")"));
  }
  if (std::any_of(labels->data.begin(), labels->data.end(), [](uint8_t l) { return l > 9; })) {
    return absl::DataLossError(absl::StrCat(prefix, "-labels: a label outside [0, 9]"));
  }
  const int64_t n = limit > 0 ? std::min(limit, images->shape[0]) : images->shape[0];
  const at::TensorOptions bytes = at::TensorOptions().dtype(at::kByte);
  Dataset data;
  data.images =
      at::from_blob(images->data.data(), {n, 1, 28, 28}, bytes).to(at::kFloat).div_(255.0);
  data.labels = at::from_blob(labels->data.data(), {n}, bytes).to(at::kLong);
  return data;
}

}  // namespace qcal::examples
