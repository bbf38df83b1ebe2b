// Reading the IDX files of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/, "FILE
// FORMATS"), gzip-compressed as Debian's dataset-fashion-mnist ships them
// (/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz, ...).
//
//   absl::StatusOr<IdxArray> images = ReadIdxGz(dir + "/t10k-images-idx3-ubyte.gz");
//   // images->shape == {10000, 28, 28}, images->data: 7,840,000 bytes, row-major
#ifndef QCAL_EXAMPLES_QAT_FASHION_MNIST_IDX_FILE_H_
#define QCAL_EXAMPLES_QAT_FASHION_MNIST_IDX_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace qcal::examples {

// An unsigned-byte IDX array: its dimensions (outermost first) and values in row-major order.
struct IdxArray {
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

// Reads a gzip-compressed (or plain: zlib reads both) IDX file of unsigned bytes (type 0x08).
// Errors: NOT_FOUND when the file cannot be opened; DATA_LOSS for a bad magic number, another
// element type, a truncated file or bytes after the data; all name the file.
absl::StatusOr<IdxArray> ReadIdxGz(const std::string& path);

}  // namespace qcal::examples

#endif  // QCAL_EXAMPLES_QAT_FASHION_MNIST_IDX_FILE_H_
