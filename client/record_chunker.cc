#include "client/record_chunker.h"

#include <algorithm>
#include <string>

namespace qcal::internal {

bool ForEachRecordMessage(const Batch& batch, std::string_view model, size_t chunk_bytes,
                          absl::FunctionRef<bool(const v1::RecordRequest&)> emit,
                          std::string_view session_id) {
  // One message object reused for every chunk, so its data buffer is allocated once.
  v1::RecordRequest message;
  if (!model.empty()) message.set_model(std::string(model));
  if (!model.empty() && !session_id.empty()) message.set_session_id(std::string(session_id));
  if (batch.sequence > 0) message.set_sequence(batch.sequence);
  message.set_quantizer(batch.quantizer);
  if (batch.partial.has_value()) {
    // A whole batch of its own; the sender writes each batch completely before the next, so it
    // never lands inside an incomplete tensor batch.
    *message.mutable_partial() = *batch.partial;
    return emit(message);
  }
  v1::TensorHeader* header = message.mutable_header();
  header->set_dtype(ToProto(batch.dtype));
  header->mutable_shape()->Assign(batch.shape.begin(), batch.shape.end());

  const std::string_view data = batch.data;
  size_t offset = 0;
  bool first = true;
  do {
    const size_t n = std::min(chunk_bytes, data.size() - offset);
    message.mutable_data()->assign(data.data() + offset, n);
    if (!emit(message)) return false;
    offset += n;
    if (first) {  // the messages after the first carry bytes only
      message.clear_model();
      message.clear_session_id();
      message.clear_sequence();
      message.clear_quantizer();
      message.clear_header();
      first = false;
    }
  } while (offset < data.size());
  return true;
}

}  // namespace qcal::internal
