// Reassembles Record's chunked tensor batches (the chunking contract of
// proto/qcal/v1/calibration.proto, RecordRequest): a header announces prod(shape) * sizeof(dtype)
// bytes, data chunks deliver them, and the batch is complete when exactly that many arrived.
// Pure and independent of gRPC: the same bytes give the same Batch however they were chunked.
//
//   BatchAssembler assembler(/*max_batch_bytes=*/1 << 30);
//   QCAL_RETURN_IF_ERROR(assembler.Start("conv1._input_quantizer", {DType::kFloat32, {2, 3}}));
//   QCAL_RETURN_IF_ERROR(assembler.Append(std::move(chunk)));
//   if (assembler.complete()) Apply(assembler.Take());
//   ...
//   QCAL_RETURN_IF_ERROR(assembler.Finish());   // at the end of the stream
//
// Every error drops the batch in progress; what was taken before is unaffected.
#ifndef QCAL_SERVER_CORE_BATCH_ASSEMBLER_H_
#define QCAL_SERVER_CORE_BATCH_ASSEMBLER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/dtype.h"

namespace qcal::server {

struct BatchHeader {
  kernels::DType dtype = kernels::DType::kFloat32;
  // Row-major; every dimension >= 1; empty means a scalar.
  std::vector<int64_t> shape{};
};

struct Batch {
  std::string quantizer{};
  BatchHeader header{};
  // prod(shape).
  int64_t elements = 0;
  // Exactly elements * DTypeSize(dtype) little-endian bytes.
  std::string bytes{};
};

// Largest rank of a batch. Tensors of deep-learning frameworks stay far below it (numpy allows
// 64, PyTorch and ONNX Runtime fewer in practice); a larger rank is malformed input, and it would
// only make error messages and shape checks expensive.
inline constexpr size_t kMaxRank = 64;

// prod(shape) after checking every dimension >= 1 and that neither the product nor the byte
// count (times `element_size`) overflows int64. INVALID_ARGUMENT otherwise, naming the dimension.
absl::StatusOr<int64_t> CheckedElementCount(const std::vector<int64_t>& shape, size_t element_size);

class BatchAssembler {
 public:
  // Batches larger than `max_batch_bytes` are refused when their header arrives.
  explicit BatchAssembler(int64_t max_batch_bytes);
  // Recycles the buffer of a batch in progress.
  ~BatchAssembler();

  BatchAssembler(const BatchAssembler&) = delete;
  BatchAssembler& operator=(const BatchAssembler&) = delete;

  // Starts a new batch for `quantizer`.
  // Errors: INVALID_ARGUMENT when a batch is still incomplete (a new header mid-batch), the
  // quantizer name is empty, the rank exceeds kMaxRank, or the shape is empty-tensor /
  // overflowing; RESOURCE_EXHAUSTED when
  // the batch's byte count exceeds max_batch_bytes.
  absl::Status Start(std::string quantizer, BatchHeader header);

  // Appends bytes to the current batch. Taking `chunk` by value lets a batch that arrives in one
  // message keep that message's buffer without a copy.
  // Errors: INVALID_ARGUMENT for data without a batch, or more bytes than the header declared.
  absl::Status Append(std::string chunk);

  // A batch is started and not yet complete.
  bool in_progress() const { return started_ && !complete(); }
  // The current batch has all its bytes; Take() it before Start()ing the next.
  bool complete() const {
    return started_ && static_cast<int64_t>(batch_.bytes.size()) == expected_bytes_;
  }
  // The byte count of the batch started last (0 when none is).
  int64_t expected_bytes() const { return started_ ? expected_bytes_ : 0; }
  // The completed batch; the assembler is then idle. Precondition: complete().
  Batch Take();

  // Hands a taken batch's buffer back for a later batch that arrives in several chunks, so
  // that it is assembled without a fresh allocation: the first touch of fresh pages costs a
  // page fault per 4 KiB and zero-fills them, more than the copy itself. The buffer goes to the
  // process-wide BufferPool (bounded, emptied when the server is idle), which this and every
  // other assembler draw from; a stream keeps no idle buffer of its own between batches.
  void Recycle(std::string buffer);

  // End of the stream. INVALID_ARGUMENT when a batch is cut off (fewer bytes than declared).
  absl::Status Finish();

  // The quantizer of the batch in progress (empty when idle).
  const std::string& quantizer() const { return batch_.quantizer; }
  // The shape of the batch in progress (empty when idle).
  const std::vector<int64_t>& shape() const { return batch_.header.shape; }

 private:
  // Drops the batch in progress.
  void Clear();

  // Constant after construction.
  const int64_t max_batch_bytes_;

  bool started_ = false;
  int64_t expected_bytes_ = 0;
  Batch batch_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_BATCH_ASSEMBLER_H_
