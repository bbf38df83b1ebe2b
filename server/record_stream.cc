#include "server/record_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/batch_decode.h"
#include "server/names.h"
#include "server/status_util.h"

namespace qcal::server {

RecordStream::RecordStream(ModelRegistry& registry, Metrics& metrics, int64_t max_batch_bytes)
    : registry_(registry), metrics_(metrics), assembler_(max_batch_bytes) {
  metrics_.StreamOpened();
}

RecordStream::~RecordStream() { metrics_.StreamClosed(); }

absl::Status RecordStream::Add(RecordChunk chunk) {
  if (model_.empty()) {
    if (chunk.model.empty()) {
      return absl::InvalidArgumentError("the first Record message needs `model`");
    }
    QCAL_RETURN_IF_ERROR(registry_.Find(chunk.model).status());
    model_ = std::move(chunk.model);
  } else if (!chunk.model.empty() && chunk.model != model_) {
    return absl::InvalidArgumentError(
        absl::StrCat("a Record stream of model '", model_, "' got a message for model '",
                     ShortForMessage(chunk.model), "'; one stream feeds one model"));
  }
  const std::string where = absl::StrCat("model '", model_, "'");
  if (chunk.header.has_value()) {
    QCAL_RETURN_IF_ERROR(
        Annotate(assembler_.Start(std::move(chunk.quantizer), std::move(*chunk.header)), where));
  } else if (!chunk.quantizer.empty() && assembler_.in_progress() &&
             chunk.quantizer != assembler_.quantizer()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": data for quantizer '", ShortForMessage(chunk.quantizer),
                     "' arrived in the middle of a batch of '", assembler_.quantizer(), "'"));
  }
  QCAL_RETURN_IF_ERROR(Annotate(assembler_.Append(std::move(chunk.data)), where));
  if (!assembler_.complete()) return absl::OkStatus();
  Batch batch = assembler_.Take();
  absl::Status applied = Apply(batch);
  assembler_.Recycle(std::move(batch.bytes));
  return applied;
}

absl::Status RecordStream::Apply(const Batch& batch) {
  const std::span<const float> values = DecodeBatch(batch, &scratch_);
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
  QCAL_ASSIGN_OR_RETURN(BatchStats applied,
                        model->Record(batch.quantizer, batch.header.shape, values,
                                      static_cast<int64_t>(batch.bytes.size())));
  applied_ += applied;
  metrics_.AddBatches(model_, applied);
  return absl::OkStatus();
}

absl::StatusOr<BatchStats> RecordStream::Finish() {
  QCAL_RETURN_IF_ERROR(Annotate(assembler_.Finish(), absl::StrCat("model '", model_, "'")));
  return applied_;
}

}  // namespace qcal::server
