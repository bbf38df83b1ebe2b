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
                           const CallControl& call, bool durability)
    : registry_(registry),
      metrics_(metrics),
      budget_(budget),
      activity_(std::move(activity)),
      call_(call),
      assembler_(max_batch_bytes),
      durability_(durability) {
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
    if (!chunk.session_id.empty()) {
      QCAL_RETURN_IF_ERROR(
          CheckSessionId(chunk.session_id, absl::StrCat("model '", model_, "', Record")));
      session_id_ = std::move(chunk.session_id);
      chunk.session_id.clear();
    }
  } else if (!chunk.model.empty() && chunk.model != model_) {
    return absl::InvalidArgumentError(
        absl::StrCat("a Record stream of model '", model_, "' got a message for model '",
                     ShortForMessage(chunk.model), "'; one stream feeds one model"));
  }
  const std::string where = absl::StrCat("model '", model_, "'");
  QCAL_RETURN_IF_ERROR(CheckSession(chunk, where));
  if (chunk.partial.has_value()) return ApplyPartial(chunk);
  if (chunk.header.has_value()) {
    const kernels::DType dtype = chunk.header->dtype;
    QCAL_RETURN_IF_ERROR(
        Annotate(assembler_.Start(std::move(chunk.quantizer), std::move(*chunk.header)), where));
    QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
    sequence_ = chunk.sequence;
    // A batch applied before (a client resending what it had not seen durable) is only read:
    // its shape was checked when it was applied. Sequences only grow, so this look is final;
    // a batch not found a duplicate here is checked again as it is applied.
    duplicate_ = !session_id_.empty() && chunk.sequence <= model->Sequences(session_id_).applied;
    // What the quantizer can never take (a per-channel batch of too many channels, an axis
    // outside the rank) is refused now, before its bytes are received and buffered.
    if (!duplicate_) {
      QCAL_RETURN_IF_ERROR(model->CheckBatchShape(assembler_.quantizer(), assembler_.shape()));
    }
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
  absl::Status applied = absl::OkStatus();
  if (duplicate_) {
    Count(std::nullopt);
  } else {
    applied = Apply(batch);
  }
  assembler_.Recycle(std::move(batch.bytes));
  reservation_.Release();
  return applied;
}

absl::Status RecordStream::Apply(const Batch& batch) {
  const int64_t scratch_bytes = DecodeScratchBytes(batch.header.dtype, batch.elements);
  std::string scratch;
  if (scratch_bytes > 0) scratch = BufferPool::Global().Take(static_cast<size_t>(scratch_bytes));
  const std::span<const float> values = DecodeBatch(batch, &scratch);
  absl::StatusOr<std::optional<BatchStats>> applied =
      [&]() -> absl::StatusOr<std::optional<BatchStats>> {
    QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
    const int64_t bytes = static_cast<int64_t>(batch.bytes.size());
    if (!session_id_.empty()) {
      return model->RecordSequenced(batch.quantizer, batch.header.shape, values, bytes,
                                    {.session_id = session_id_, .sequence = sequence_});
    }
    return model->Record(batch.quantizer, batch.header.shape, values, bytes);
  }();
  BufferPool::Global().Give(std::move(scratch));
  QCAL_RETURN_IF_ERROR(applied.status());
  Count(*applied);
  return absl::OkStatus();
}

void RecordStream::Count(const std::optional<BatchStats>& applied) {
  if (!applied.has_value()) {
    ++duplicates_;
    return;
  }
  applied_ += *applied;
  metrics_.AddBatches(model_, *applied);
}

absl::Status RecordStream::CheckSession(const RecordChunk& chunk, const std::string& where) {
  if (!chunk.session_id.empty() && chunk.session_id != session_id_) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": a Record stream ",
        session_id_.empty() ? "opened without session_id"
                            : absl::StrCat("of session ", SessionForMessage(session_id_)),
        " got a message with session ", SessionForMessage(chunk.session_id),
        "; a stream belongs to the session of its first message"));
  }
  const bool starts_batch = chunk.header.has_value() || chunk.partial.has_value();
  if (chunk.sequence == 0 && (session_id_.empty() || !starts_batch)) return absl::OkStatus();
  if (session_id_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": a Record message carries sequence ", chunk.sequence,
                     " but the stream has no session_id (send it in the first message)"));
  }
  if (!starts_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": a Record message without `header` or `partial` carries sequence ",
                     chunk.sequence, "; a sequence goes on the message that starts a batch"));
  }
  if (chunk.sequence < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": a batch of session ", SessionForMessage(session_id_),
                     " for quantizer '", ShortForMessage(chunk.quantizer), "' has sequence ",
                     chunk.sequence, "; with session_id every batch carries a sequence >= 1"));
  }
  return absl::OkStatus();
}

RecordStreamResult RecordStream::Result() const {
  RecordStreamResult out{.applied = applied_, .duplicates = duplicates_};
  if (session_id_.empty()) return out;
  absl::StatusOr<std::shared_ptr<Model>> model = registry_.Find(model_);
  if (!model.ok()) return out;
  const SessionSequences sequences = (*model)->Sequences(session_id_);
  out.applied_sequence = sequences.applied;
  out.durable_sequence = durability_ ? sequences.durable : sequences.applied;
  return out;
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
  if (partial.batches >= 0 && partial.elements >= 0 && partial.nonfinite >= 0) {
    QCAL_RETURN_IF_ERROR(AddBatchStats(applied_,
                                       {.batches = partial.batches,
                                        .elements = partial.elements,
                                        .nonfinite = partial.nonfinite,
                                        .bytes = chunk.partial_bytes,
                                        .partials = 1},
                                       absl::StrCat(where, ": the Record stream's "))
                             .status());
  }
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<Model> model, registry_.Find(model_));
  if (!session_id_.empty()) {
    QCAL_ASSIGN_OR_RETURN(
        const std::optional<BatchStats> applied,
        model->RecordPartialSequenced(chunk.quantizer, *chunk.partial, chunk.partial_bytes,
                                      {.session_id = session_id_, .sequence = chunk.sequence}));
    Count(applied);
    return absl::OkStatus();
  }
  QCAL_ASSIGN_OR_RETURN(const BatchStats applied,
                        model->RecordPartial(chunk.quantizer, *chunk.partial, chunk.partial_bytes));
  Count(applied);
  return absl::OkStatus();
}

absl::StatusOr<BatchStats> RecordStream::Finish() {
  reservation_.Release();  // held only by a batch cut off, which Finish drops
  QCAL_RETURN_IF_ERROR(Annotate(assembler_.Finish(), absl::StrCat("model '", model_, "'")));
  return applied_;
}

}  // namespace qcal::server
