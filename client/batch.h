// One recorded tensor, or one pre-aggregated state, owned by the client until it has been
// streamed: a Record batch.
#ifndef QCAL_CLIENT_BATCH_H_
#define QCAL_CLIENT_BATCH_H_

#include <cstdint>
#include <optional>
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
  // Set for a pre-aggregated batch (RecordRequest.partial): then dtype, shape and data are unused.
  std::optional<v1::PartialState> partial;
  // The session's number for it (RecordRequest.sequence), given when it is queued.
  int64_t sequence = 0;

  // Bytes the batch holds in the send queue.
  size_t bytes() const { return partial.has_value() ? partial->ByteSizeLong() : data.size(); }
};

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_BATCH_H_
