#include "client/record_sender.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/record_chunker.h"
#include "client/status_macros.h"
#include "common/absl_string_view.h"

namespace qcal::internal {
namespace {

// chunk_bytes limited to 1 .. kMaxChunkBytes (0 would never make progress).
SessionOptions Normalized(SessionOptions options) {
  options.chunk_bytes = std::clamp<size_t>(options.chunk_bytes, 1, kMaxChunkBytes);
  return options;
}

}  // namespace

RecordSender::RecordSender(std::shared_ptr<Connection> connection, std::string model,
                           SessionOptions options)
    : connection_(std::move(connection)),
      model_(std::move(model)),
      options_(Normalized(options)),
      queue_(options.max_queue_bytes),
      session_id_(NewSessionId()),
      thread_([this] { Run(); }) {}

RecordSender::~RecordSender() {
  queue_.Close();
  thread_.join();
}

absl::Status RecordSender::Record(std::string_view quantizer, const TensorView& tensor) {
  if (quantizer.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model_, "': Record needs a quantizer name"));
  }
  QCAL_CLIENT_ASSIGN_OR_RETURN(const uint64_t expected, TensorBytes(tensor.dtype, tensor.shape));
  if (tensor.data.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", model_, "', quantizer '", ToAbsl(quantizer), "': ", tensor.data.size(),
        " data bytes, but shape x dtype (", ToAbsl(DTypeName(tensor.dtype)), ") needs ", expected));
  }
  Batch batch;
  batch.quantizer = std::string(quantizer);
  batch.dtype = tensor.dtype;
  batch.shape.assign(tensor.shape.begin(), tensor.shape.end());
  // One pass: resize() would zero-fill the bytes before the copy overwrites them.
  batch.data.assign(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size());
  return queue_.Push(std::move(batch));
}

absl::Status RecordSender::RecordPartial(std::string_view quantizer,
                                         const v1::PartialState& partial) {
  if (quantizer.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model_, "': RecordPartial needs a quantizer name"));
  }
  if (partial.state_case() == v1::PartialState::STATE_NOT_SET) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", model_, "', quantizer '", ToAbsl(quantizer),
        "': a partial state needs a histogram or a max (PartialState.state is not set)"));
  }
  // A partial state travels in one message, which every server takes up to 4 MiB (plus room for
  // the names); a larger one would come back as gRPC's bare "Received message larger than max".
  if (const size_t bytes = partial.ByteSizeLong(); bytes > kMaxChunkBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "model '", model_, "', quantizer '", ToAbsl(quantizer), "': the partial state is ", bytes,
        " bytes, more than one Record message carries (", kMaxChunkBytes,
        " bytes, what every qcal-server accepts)",
        partial.has_histogram()
            ? absl::StrCat("; its histogram has ", partial.histogram().counts_size(),
                           " bins: use fewer num_bins, or record the tensors without aggregation")
            : ""));
  }
  Batch batch;
  batch.quantizer = std::string(quantizer);
  batch.partial = partial;
  return queue_.Push(std::move(batch));
}

absl::Status RecordSender::Flush() { return queue_.Flush().status(); }

absl::StatusOr<CommitResult> RecordSender::Commit() { return queue_.Flush(/*commit=*/true); }

v1::RecordResponse AppliedBeforeError(const grpc::Status& status) {
  v1::RpcStatus details;
  v1::RecordResponse applied;
  if (!details.ParseFromString(status.error_details())) return applied;
  for (const google::protobuf::Any& detail : details.details()) {
    if (detail.UnpackTo(&applied)) return applied;
  }
  return v1::RecordResponse();
}

std::string NewSessionId() {
  std::random_device random;
  std::string id(16, '\0');
  for (size_t i = 0; i < id.size(); i += 4) {
    const uint32_t word = random();
    std::memcpy(id.data() + i, &word, 4);
  }
  return id;
}

void RecordSender::Run() {
  for (;;) {
    const SendQueue::Work work = queue_.Next();
    switch (work.kind) {
      case SendQueue::Work::kBatch:
        if (absl::Status status = Send(*work.batch); status.ok()) {
          queue_.Written();
        } else {
          Recover(status);
        }
        break;
      case SendQueue::Work::kSync: {
        // The held batches fill max_queue_bytes: learn which are durable (closing the stream
        // answers for applied; a Commit makes them durable), so they can be freed.
        absl::Status status = Finish();
        bool commit = false;
        if (status.ok() && queue_.durable_sequence() < queue_.applied_sequence()) {
          status = CommitNow();
          commit = true;
        }
        if (!status.ok()) {
          Recover(status, commit);
        } else if (queue_.unconfirmed_batches() > 0) {
          // Nothing else would free them: an error, not a Record() blocked for ever.
          FailSession(absl::FailedPreconditionError(absl::StrCat(
              "model '", model_, "': the server confirmed batches up to sequence ",
              queue_.durable_sequence(), " (applied ", queue_.applied_sequence(), ") but ",
              queue_.unconfirmed_batches(),
              " sent batches are held for a resend; it no longer holds this session's sequences")));
        }
        queue_.SyncDone();
        break;
      }
      case SendQueue::Work::kFlush: {
        absl::Status status = Finish();
        const bool commit = status.ok() && work.commit;
        if (commit) status = CommitNow();
        // Reconnecting: the held batches are resent first; the flush stays asked for and is
        // served after them.
        if (!status.ok() && Recover(status, commit)) break;
        queue_.FlushDone(absl::OkStatus());  // an error is pending in the queue (Fail)
        break;
      }
      case SendQueue::Work::kClose: {
        // Errors: nobody is left to tell; Flush() first to see them. A broken stream is still
        // reconnected and resent, up to the reconnect deadline.
        const absl::Status status = Finish();
        if (!status.ok() && queue_.held_batches() > 0 && Recover(status)) break;
        return;
      }
    }
  }
}

absl::Status RecordSender::Send(const Batch& batch) {
  const bool new_stream = writer_ == nullptr;
  if (new_stream) {
    context_ = std::make_unique<grpc::ClientContext>();
    Connection::AddModelMetadata(context_.get(), model_);
    response_.Clear();
    writer_ = connection_->stub->Record(context_.get(), &response_);
  }
  const bool written = ForEachRecordMessage(
      batch, new_stream ? std::string_view(model_) : std::string_view(), options_.chunk_bytes,
      [&](const v1::RecordRequest& message) {
        if (!writer_->Write(message)) return false;
        sent_bytes_ += static_cast<int64_t>(message.data().size());
        if (options_.progress) options_.progress(sent_bytes_, kUnknownTotal);
        return true;
      },
      session_id_);
  if (written) {
    const bool ready =
        connection_->channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
    reached_ = reached_ || ready;
    // The stream got through to a server: a later failure starts a new outage.
    if (outage_since_.has_value() && ready) {
      outage_since_.reset();
      backoff_ = kReconnectInitialBackoff;
    }
    return absl::OkStatus();
  }
  // The stream broke: its status says why (the server refused an earlier or this batch, or it
  // is gone).
  absl::Status status = Finish();
  if (status.ok()) {
    // The server ended the stream without an error (it closed it): what it applied is known,
    // the rest is resent.
    status = absl::CancelledError(absl::StrCat("model '", model_,
                                               "': the server closed the Record stream before "
                                               "quantizer '",
                                               batch.quantizer, "' was sent"));
  }
  return status;
}

absl::Status RecordSender::Finish() {
  if (writer_ == nullptr) return absl::OkStatus();
  writer_->WritesDone();
  const grpc::Status status = writer_->Finish();
  writer_.reset();
  context_.reset();
  // On an error the server says in the status details what it applied before it (a server
  // without details applied nothing we can count on).
  const int64_t durable = queue_.durable_sequence();
  queue_.StreamClosed(status.ok() ? response_ : AppliedBeforeError(status), status.ok());
  // The server wrote (its committer did): a failed Commit's clock no longer runs (a Record()
  // that waited for it may have got its room and ask for none again).
  if (queue_.durable_sequence() > durable) {
    commit_failing_since_.reset();
    commit_backoff_ = kReconnectInitialBackoff;
  }
  if (status.ok()) {
    reached_ = true;
    outage_since_.reset();
    backoff_ = kReconnectInitialBackoff;
  }
  return FromGrpcStatus(status);
}

absl::Status RecordSender::CommitNow() {
  v1::CommitRequest request;
  request.set_model(model_);
  request.set_session_id(session_id_);
  // The channel retries an UNAVAILABLE Commit itself (channel.cc) before it fails here: a
  // failure is counted from when the call started.
  commit_sent_ = absl::Now();
  absl::StatusOr<v1::CommitResponse> response =
      connection_->Call(&v1::Calibration::StubInterface::Commit, request);
  if (!response.ok()) return response.status();
  const int64_t had = queue_.applied_sequence();
  if (queue_.ServerLost(response->applied_sequence())) {
    // Resent, then committed again (Recover): a commit() must not return with them lost.
    return absl::UnavailableError(absl::StrCat(
        "model '", model_, "': the server holds this session's batches up to sequence ",
        response->applied_sequence(), " but had applied up to ", had,
        ": it restarted before writing them; they are sent again"));
  }
  queue_.Committed(response->applied_sequence(), response->durable_sequence());
  commit_failing_since_.reset();
  commit_backoff_ = kReconnectInitialBackoff;
  return absl::OkStatus();
}

void RecordSender::FailSession(const absl::Status& status) {
  queue_.Fail(status);
  commit_failing_since_.reset();
  commit_backoff_ = kReconnectInitialBackoff;
  // What was dropped may or may not have been applied (a broken stream does not always say),
  // so its sequences cannot be reused: the session goes on under a new id, from sequence 1.
  session_id_ = NewSessionId();
}

bool RecordSender::Recover(const absl::Status& status, bool commit) {
  // A server without sessions would count a resent batch twice: fail as before exactly-once.
  if ((!absl::IsUnavailable(status) && !absl::IsCancelled(status)) || queue_.legacy()) {
    FailSession(status);
    return false;
  }
  const absl::Time now = absl::Now();
  if (!outage_since_.has_value()) outage_since_ = now;
  if (commit && !commit_failing_since_.has_value()) commit_failing_since_ = commit_sent_;
  // While Commit fails, its clock runs from the first failed Commit, whatever got through since.
  const bool committing = commit_failing_since_.has_value();
  const absl::Time since =
      committing ? std::min(*outage_since_, *commit_failing_since_) : *outage_since_;
  const absl::Time give_up = since + options_.reconnect_deadline;
  if (now >= give_up) {
    const int64_t held = queue_.held_batches();
    const int64_t applied = queue_.applied_sequence();
    const std::string batches =
        absl::StrCat(held, " recorded batches were not confirmed durable (",
                     std::max<int64_t>(0, held - (applied - queue_.durable_sequence())),
                     " of them not applied)");
    FailSession(absl::UnavailableError(
        commit
            // The server answers but cannot write (its message names the file and the reason).
            ? absl::StrCat("model '", model_, "': the server at ", connection_->address,
                           " could not make the session's batches durable within the session's "
                           "reconnect_deadline of ",
                           absl::FormatDuration(options_.reconnect_deadline),
                           " (Commit kept failing); ", batches, "; last error: ", status.message())
            : absl::StrCat(
                  "model '", model_, "': the server at ", connection_->address,
                  reached_ ? " could not be reached again within" : " could not be reached within",
                  " the session's reconnect_deadline of ",
                  absl::FormatDuration(options_.reconnect_deadline), "; ", batches,
                  "; last error: ", status.message())));
    outage_since_.reset();
    backoff_ = kReconnectInitialBackoff;
    return false;
  }
  // A failing Commit backs off on its own clock: the resends in between reset backoff_.
  absl::Duration& backoff = committing ? commit_backoff_ : backoff_;
  absl::SleepFor(std::min(backoff, give_up - now));
  backoff = std::min(backoff * 2, kReconnectMaxBackoff);
  queue_.Rewind();
  return true;
}

}  // namespace qcal::internal
