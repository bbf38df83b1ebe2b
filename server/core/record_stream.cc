#include "server/core/record_stream.h"

#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/base/names.h"
#include "server/base/status_util.h"
#include "server/core/batch_decode.h"
#include "server/core/buffer_pool.h"

namespace qcal::server {

RecordStream::RecordStream(ModelRegistry& registry, Metrics& metrics, int64_t max_batch_bytes,
                           InflightBudget& budget, IdleTrimmer::Activity activity,
                           const CallControl& call)
    : registry_(registry),
      metrics_(metrics),
      budget_(budget),
      activity_(std::move(activity)),
      call_(call),
      assembler_(max_batch_bytes) {
  metrics_.StreamOpened();
}

RecordStream::~RecordStream() { metrics_.StreamClosed(); }

absl::Status RecordStream::Add(RecordChunk chunk) {
  absl::Status status = AddChunk(std::move(chunk));
  // The stream is over; the batch in progress, if any, was dropped.
  if (!status.ok()) reservation_.Release();
  return status;
}

absl::Status RecordStream::AddChunk(RecordChunk chunk) {
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
  if (chunk.partial.has_value()) return ApplyPartial(chunk);
  if (chunk.header.has_value()) {
    const kernels::DType dtype = chunk.header->dtype;
    QCAL_RETURN_IF_ERROR(
        Annotate(assembler_.Start(std::move(chunk.quantizer), std::move(*chunk.header)), where));
    // What the quantizer can never take (a per-channel batch of too many channels, an axis
    // outside the rank) is refused now, before its bytes are received and buffered.
    QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
    QCAL_RETURN_IF_ERROR(model->CheckBatchShape(assembler_.quantizer(), assembler_.shape()));
    // One reservation at a time: the previous batch's was released when it was applied.
    const int64_t bytes = assembler_.expected_bytes();
    const int64_t elements = bytes / static_cast<int64_t>(kernels::DTypeSize(dtype));
    const int64_t scratch = DecodeScratchBytes(dtype, elements);
    const int64_t reserve = scratch > std::numeric_limits<int64_t>::max() - bytes
                                ? std::numeric_limits<int64_t>::max()
                                : bytes + scratch;
    QCAL_ASSIGN_OR_RETURN(
        reservation_, budget_.Reserve(reserve, call_,
                                      absl::StrCat(where, ", quantizer '",
                                                   ShortForMessage(assembler_.quantizer()), "'")));
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
  reservation_.Release();
  return applied;
}

absl::Status RecordStream::Apply(const Batch& batch) {
  const int64_t scratch_bytes = DecodeScratchBytes(batch.header.dtype, batch.elements);
  std::string scratch;
  if (scratch_bytes > 0) scratch = BufferPool::Global().Take(static_cast<size_t>(scratch_bytes));
  const std::span<const float> values = DecodeBatch(batch, &scratch);
  absl::StatusOr<BatchStats> applied = [&]() -> absl::StatusOr<BatchStats> {
    QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
    return model->Record(batch.quantizer, batch.header.shape, values,
                         static_cast<int64_t>(batch.bytes.size()));
  }();
  BufferPool::Global().Give(std::move(scratch));
  QCAL_RETURN_IF_ERROR(applied.status());
  applied_ += *applied;
  metrics_.AddBatches(model_, *applied);
  return absl::OkStatus();
}

absl::Status RecordStream::ApplyPartial(RecordChunk& chunk) {
  const std::string where = absl::StrCat("model '", model_, "'");
  if (chunk.quantizer.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": a Record message with `partial` needs `quantizer`"));
  }
  const std::string quantizer = ShortForMessage(chunk.quantizer);
  if (chunk.header.has_value() || !chunk.data.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": the Record message with a partial state for quantizer '", quantizer,
                     "' also carries ", chunk.header.has_value() ? "`header`" : "`data`",
                     "; a partial state is a batch of its own"));
  }
  if (assembler_.in_progress()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": a partial state for quantizer '", quantizer, "' arrived while the batch of '",
        assembler_.quantizer(), "' is incomplete; send the batch's remaining bytes first"));
  }
  // The stream's totals (RecordResponse) must hold the state's counters as well as each
  // quantizer's do: a client declares them, and two states of 2^62 elements for two quantizers
  // would wrap the stream's sum. Checked before the merge, so that a refused state changes
  // nothing. (Negative counters are RecordPartial's to refuse.)
  const PartialState& partial = *chunk.partial;
  BatchStats total = applied_;
  if (partial.batches >= 0 && partial.elements >= 0 && partial.nonfinite >= 0) {
    QCAL_ASSIGN_OR_RETURN(total, AddBatchStats(applied_,
                                               {.batches = partial.batches,
                                                .elements = partial.elements,
                                                .nonfinite = partial.nonfinite,
                                                .bytes = chunk.partial_bytes,
                                                .partials = 1},
                                               absl::StrCat(where, ": the Record stream's ")));
  }
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
  QCAL_ASSIGN_OR_RETURN(const BatchStats applied,
                        model->RecordPartial(chunk.quantizer, partial, chunk.partial_bytes));
  applied_ = total;
  metrics_.AddBatches(model_, applied);
  return absl::OkStatus();
}

absl::StatusOr<BatchStats> RecordStream::Finish() {
  reservation_.Release();  // held only by a batch cut off, which Finish drops
  QCAL_RETURN_IF_ERROR(Annotate(assembler_.Finish(), absl::StrCat("model '", model_, "'")));
  return applied_;
}

}  // namespace qcal::server
