#include "server/core/batch_assembler.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kernels/tensor_shape.h"
#include "server/base/names.h"
#include "server/core/buffer_pool.h"

namespace qcal::server {
namespace {

// Buffers of this size and more are backed by 2 MiB pages where the kernel allows it
// (transparent huge pages in "madvise" mode): a 64 MiB batch then takes 32 page faults and TLB
// entries instead of 16K, which the copy into it and the kernels streaming over it feel.
constexpr size_t kHugePageBytes = size_t{2} << 20;

void AdviseHugePages(const char* data, size_t size) {
#if defined(MADV_HUGEPAGE)
  if (size < 2 * kHugePageBytes) return;
  const uintptr_t begin =
      (reinterpret_cast<uintptr_t>(data) + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size) & ~(kHugePageBytes - 1);
  // Advice only: where it is refused the pages stay 4 KiB, nothing else changes.
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data, (void)size;
#endif
}

}  // namespace

absl::StatusOr<int64_t> CheckedElementCount(const std::vector<int64_t>& shape,
                                            size_t element_size) {
  const int64_t max = std::numeric_limits<int64_t>::max() / static_cast<int64_t>(element_size);
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", kernels::ShapeString(shape), ": dimension ", i, " is ", shape[i],
                       "; every dimension must be >= 1 (empty tensors are refused)"));
    }
    if (count > max / shape[i]) {
      return absl::InvalidArgumentError(absl::StrCat("shape ", kernels::ShapeString(shape),
                                                     ": the byte count overflows 64 bits"));
    }
    count *= shape[i];
  }
  return count;
}

BatchAssembler::BatchAssembler(int64_t max_batch_bytes) : max_batch_bytes_(max_batch_bytes) {}

BatchAssembler::~BatchAssembler() { Clear(); }

absl::Status BatchAssembler::Start(std::string quantizer, BatchHeader header) {
  if (in_progress()) {
    const std::string cut = batch_.quantizer;
    const int64_t got = static_cast<int64_t>(batch_.bytes.size());
    const int64_t expected = expected_bytes_;
    Clear();
    return absl::InvalidArgumentError(
        absl::StrCat("a new batch header arrived before the batch of quantizer '", cut,
                     "' was complete (", got, " of ", expected, " bytes); the batch was dropped"));
  }
  Clear();
  if (quantizer.empty()) {
    return absl::InvalidArgumentError("a batch header needs a quantizer name");
  }
  if (header.shape.size() > kMaxRank) {
    return absl::InvalidArgumentError(absl::StrCat("quantizer '", ShortForMessage(quantizer),
                                                   "': a batch of rank ", header.shape.size(),
                                                   " has more than ", kMaxRank, " dimensions"));
  }
  const size_t element_size = kernels::DTypeSize(header.dtype);
  absl::StatusOr<int64_t> elements = CheckedElementCount(header.shape, element_size);
  if (!elements.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("quantizer '", ShortForMessage(quantizer),
                                                   "': ", elements.status().message()));
  }
  const int64_t bytes = *elements * static_cast<int64_t>(element_size);
  if (bytes > max_batch_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "quantizer '", ShortForMessage(quantizer), "': a batch of shape ",
        kernels::ShapeString(header.shape), " ", std::string(kernels::DTypeName(header.dtype)),
        " is ", bytes, " bytes, more than the server's --max-batch-bytes ", max_batch_bytes_));
  }
  started_ = true;
  expected_bytes_ = bytes;
  batch_.quantizer = std::move(quantizer);
  batch_.header = std::move(header);
  batch_.elements = *elements;
  return absl::OkStatus();
}

absl::Status BatchAssembler::Append(std::string chunk) {
  if (chunk.empty()) return absl::OkStatus();
  if (!in_progress()) {
    return absl::InvalidArgumentError(
        absl::StrCat(chunk.size(), " data bytes arrived without a batch header (a batch starts ",
                     "with a message carrying `header`)"));
  }
  const int64_t have = static_cast<int64_t>(batch_.bytes.size());
  if (static_cast<int64_t>(chunk.size()) > expected_bytes_ - have) {
    const std::string quantizer = batch_.quantizer;
    const int64_t expected = expected_bytes_;
    Clear();
    return absl::InvalidArgumentError(absl::StrCat(
        "quantizer '", ShortForMessage(quantizer), "': ", have + static_cast<int64_t>(chunk.size()),
        " bytes arrived for a batch whose shape and dtype declare ", expected, " bytes"));
  }
  if (have == 0 && static_cast<int64_t>(chunk.size()) == expected_bytes_) {
    batch_.bytes = std::move(chunk);  // the whole batch in one message: keep its buffer
  } else {
    if (have == 0) {
      const size_t capacity = static_cast<size_t>(expected_bytes_);
      batch_.bytes = BufferPool::Global().Take(capacity);
      batch_.bytes.clear();
      if (batch_.bytes.capacity() < capacity) {
        batch_.bytes.reserve(capacity);  // a fresh allocation, not yet touched
        AdviseHugePages(batch_.bytes.data(), batch_.bytes.capacity());
      }
    }
    batch_.bytes.append(chunk);
  }
  return absl::OkStatus();
}

void BatchAssembler::Recycle(std::string buffer) { BufferPool::Global().Give(std::move(buffer)); }

Batch BatchAssembler::Take() {
  Batch out = std::move(batch_);
  Clear();
  return out;
}

absl::Status BatchAssembler::Finish() {
  if (!in_progress()) return absl::OkStatus();
  const std::string quantizer = batch_.quantizer;
  const int64_t got = static_cast<int64_t>(batch_.bytes.size());
  const int64_t expected = expected_bytes_;
  Clear();
  return absl::InvalidArgumentError(absl::StrCat("the stream ended mid-batch: quantizer '",
                                                 ShortForMessage(quantizer), "' got ", got, " of ",
                                                 expected, " bytes; the batch was dropped"));
}

void BatchAssembler::Clear() {
  started_ = false;
  expected_bytes_ = 0;
  Recycle(std::move(batch_.bytes));
  batch_ = Batch{};
}

}  // namespace qcal::server
