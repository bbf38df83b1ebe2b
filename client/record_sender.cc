#include "client/record_sender.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/absl_string_view.h"
#include "client/record_chunker.h"
#include "client/status_macros.h"

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

absl::Status RecordSender::Flush() { return queue_.Flush(); }

v1::RecordResponse AppliedBeforeError(const grpc::Status& status) {
  v1::RpcStatus details;
  v1::RecordResponse applied;
  if (!details.ParseFromString(status.error_details())) return applied;
  for (const google::protobuf::Any& detail : details.details()) {
    if (detail.UnpackTo(&applied)) return applied;
  }
  return v1::RecordResponse();
}

void RecordSender::Run() {
  for (;;) {
    const SendQueue::Work work = queue_.Next();
    switch (work.kind) {
      case SendQueue::Work::kBatch:
        queue_.BatchDone(Send(*work.batch));
        break;
      case SendQueue::Work::kFlush:
        queue_.FlushDone(Finish());
        break;
      case SendQueue::Work::kClose:
        Finish().IgnoreError();  // nobody is left to tell; Flush() first to see it
        return;
    }
  }
}

absl::Status RecordSender::Send(const Batch& batch) {
  const bool new_stream = writer_ == nullptr;
  if (new_stream) {
    context_ = std::make_unique<grpc::ClientContext>();
    response_.Clear();
    writer_ = connection_->stub->Record(context_.get(), &response_);
  }
  // In the server's unit (RecordResponse.batches): a partial counts the tensors it stands for.
  stream_batches_ += batch.partial.has_value() ? batch.partial->batches() : 1;
  const bool written = ForEachRecordMessage(
      batch, new_stream ? std::string_view(model_) : std::string_view(), options_.chunk_bytes,
      [&](const v1::RecordRequest& message) { return writer_->Write(message); });
  if (written) return absl::OkStatus();
  // The stream broke: its status says why (usually the server refused an earlier or this batch).
  absl::Status status = Finish();
  if (status.ok()) {
    status = absl::UnavailableError(absl::StrCat("model '", model_,
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
  // without details applied nothing we can count on, so every batch counts as dropped).
  v1::RecordResponse applied = status.ok() ? response_ : AppliedBeforeError(status);
  const int64_t unapplied = std::max<int64_t>(0, stream_batches_ - applied.batches());
  stream_batches_ = 0;
  queue_.StreamClosed(applied, unapplied);
  return FromGrpcStatus(status);
}

}  // namespace qcal::internal
