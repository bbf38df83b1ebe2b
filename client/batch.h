// One recorded tensor, owned by the client until it has been streamed: a Record batch.
#ifndef QCAL_CLIENT_BATCH_H_
#define QCAL_CLIENT_BATCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "qcal/tensor.h"

namespace qcal::internal {

struct Batch {
  std::string quantizer;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  // prod(shape) * DTypeSize(dtype) bytes, little-endian, C order.
  std::string data;
};

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_BATCH_H_
