// Splits a batch into the messages of a Record stream, following the chunking contract of
// calibration.proto: the first message carries the quantizer, the header and the first bytes;
// the next ones carry only bytes, until prod(shape) * sizeof(dtype) bytes have gone.
#ifndef QCAL_CLIENT_RECORD_CHUNKER_H_
#define QCAL_CLIENT_RECORD_CHUNKER_H_

#include <cstddef>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "client/batch.h"
#include "qcal/v1/calibration.pb.h"

namespace qcal::internal {

// Calls `emit` once per message, in order; each carries at most `chunk_bytes` (>= 1) of data.
// `model` and `session_id` go into the first message when not empty (the first message of a
// stream must name the model and the session); the batch's sequence, when > 0, goes into its
// first message. A batch without bytes (an empty tensor) is one message, and so is a pre-aggregated
// batch (its `partial` with the quantizer, no header). Stops as soon as `emit` returns false (the
// stream broke) and returns false then, true when every message went out.
bool ForEachRecordMessage(const Batch& batch, std::string_view model, size_t chunk_bytes,
                          absl::FunctionRef<bool(const v1::RecordRequest&)> emit,
                          std::string_view session_id = {});

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_RECORD_CHUNKER_H_
