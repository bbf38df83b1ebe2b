#include "kernels/cuda/batch_ref.h"

#include "absl/strings/str_cat.h"

namespace qcal::kernels::cuda {

absl::Status CheckBatchRef(const BatchRef& batch) {
  if (batch.count < 0) {
    return absl::InvalidArgumentError(absl::StrCat("batch of ", batch.count, " elements"));
  }
  if (batch.data == nullptr && batch.count > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", batch.count, " elements at a null pointer"));
  }
  if (DTypeSize(batch.dtype) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown dtype ", static_cast<int>(batch.dtype)));
  }
  return absl::OkStatus();
}

}  // namespace qcal::kernels::cuda
