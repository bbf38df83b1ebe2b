// Joining the pieces of an ONNX model sent over a gRPC stream (UploadOnnx, ExportOnnx), under the
// server's size limit.
#ifndef QCAL_SERVER_CORE_ONNX_CHUNKS_H_
#define QCAL_SERVER_CORE_ONNX_CHUNKS_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/core/state_budget.h"

namespace qcal::server {

// Appends `chunk` to `bytes`, which `received` is charged for (--max-state-bytes).
// RESOURCE_EXHAUSTED, "<where>: the ONNX model is larger than the server's limit of N bytes
// (--max-batch-bytes)", when the joined model would pass `max_bytes`, or the budget's when it has
// no room for the joined bytes; `bytes` is then unchanged.
inline absl::Status AppendOnnxChunk(std::string& bytes, std::string&& chunk, int64_t max_bytes,
                                    StateBudget::Charge& received, absl::string_view where) {
  if (static_cast<int64_t>(chunk.size()) > max_bytes - static_cast<int64_t>(bytes.size())) {
    return absl::ResourceExhaustedError(absl::StrCat(where, ": the ONNX model is larger than the ",
                                                     "server's limit of ", max_bytes,
                                                     " bytes (--max-batch-bytes)"));
  }
  if (absl::Status charged =
          received.Resize(static_cast<int64_t>(bytes.size() + chunk.size()),
                          absl::StrCat(where, ": the ONNX model received so far"));
      !charged.ok()) {
    return charged;
  }
  if (bytes.empty()) {
    bytes = std::move(chunk);  // the common single-chunk case: no copy
  } else {
    bytes.append(chunk);
  }
  return absl::OkStatus();
}

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_ONNX_CHUNKS_H_
