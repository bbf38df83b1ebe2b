// Client::SaveState and Client::LoadState: a model's StateFile, streamed in pieces.
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "client/connection.h"
#include "client/status_macros.h"
#include "qcal/client.h"
#include "qcal/local_file.h"
#include "qcal/names.h"

namespace qcal {

absl::StatusOr<std::string> Client::SaveState(std::string_view model,
                                              const ProgressCallback& progress) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  v1::SaveStateRequest request;
  request.set_model(std::string(model));
  grpc::ClientContext context;
  connection_->ApplyTimeout(&context);
  internal::Connection::AddModelMetadata(&context, model);
  std::unique_ptr<grpc::ClientReaderInterface<v1::StateChunk>> reader =
      connection_->stub->SaveState(&context, request);
  std::string state;
  v1::StateChunk chunk;
  while (reader->Read(&chunk)) {
    state += chunk.data();
    if (progress) progress(static_cast<int64_t>(state.size()), kUnknownTotal);
  }
  QCAL_CLIENT_RETURN_IF_ERROR(internal::FromGrpcStatus(reader->Finish()));
  return state;
}

namespace {

// LoadState of the pieces `next` returns, in order, up to kMaxChunkBytes each: the first is taken
// before the call starts (its error sends nothing), and one shorter than kMaxChunkBytes, or an
// empty one after a full one, ends the state. At least one message goes out, so that an empty
// state still names the model. An error of `next` part way cancels the call (half a state must
// not load) and is returned. options.progress hears of each piece sent, of `total` bytes.
absl::StatusOr<v1::ModelInfo> StreamState(const internal::Connection& connection,
                                          std::string_view model, const LoadStateOptions& options,
                                          int64_t total,
                                          absl::FunctionRef<absl::StatusOr<std::string>()> next) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(std::string piece, next());
  grpc::ClientContext context;
  connection.ApplyTimeout(&context);
  internal::Connection::AddModelMetadata(&context, model);
  v1::ModelInfo info;
  std::unique_ptr<grpc::ClientWriterInterface<v1::LoadStateRequest>> writer =
      connection.stub->LoadState(&context, &info);
  v1::LoadStateRequest message;
  message.set_model(std::string(model));
  message.set_merge(options.merge);
  int64_t sent = 0;
  for (;;) {
    const bool last = piece.size() < kMaxChunkBytes;
    sent += static_cast<int64_t>(piece.size());
    message.set_data(std::move(piece));
    if (!writer->Write(message)) break;  // the server ended the stream; Finish() says why
    if (options.progress) options.progress(sent, total);
    if (last) break;
    message.clear_model();
    message.clear_merge();
    absl::StatusOr<std::string> more = next();
    if (!more.ok()) {
      context.TryCancel();
      writer->Finish().ok();
      return more.status();
    }
    if (more->empty()) break;
    piece = *std::move(more);
  }
  writer->WritesDone();
  QCAL_CLIENT_RETURN_IF_ERROR(internal::FromGrpcStatus(writer->Finish()));
  return info;
}

}  // namespace

absl::StatusOr<v1::ModelInfo> Client::LoadState(std::string_view model, std::string_view state,
                                                const LoadStateOptions& options) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  size_t offset = 0;
  return StreamState(*connection_, model, options, static_cast<int64_t>(state.size()),
                     [&]() -> absl::StatusOr<std::string> {
                       const std::string_view piece = state.substr(offset, kMaxChunkBytes);
                       offset += piece.size();
                       return std::string(piece);
                     });
}

absl::StatusOr<v1::ModelInfo> Client::LoadStateFile(std::string_view model, const std::string& path,
                                                    const LoadStateOptions& options) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  QCAL_CLIENT_ASSIGN_OR_RETURN(LocalFileReader file, LocalFileReader::Open(path));
  return StreamState(*connection_, model, options, file.size(),
                     [&] { return file.Read(kMaxChunkBytes); });
}

}  // namespace qcal
