// Client::SaveState and Client::LoadState: a model's StateFile, streamed in pieces.
#include <algorithm>
#include <memory>

#include "client/connection.h"
#include "client/status_macros.h"
#include "qcal/client.h"
#include "qcal/names.h"

namespace qcal {

absl::StatusOr<std::string> Client::SaveState(std::string_view model) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  v1::SaveStateRequest request;
  request.set_model(std::string(model));
  grpc::ClientContext context;
  connection_->ApplyTimeout(&context);
  std::unique_ptr<grpc::ClientReaderInterface<v1::StateChunk>> reader =
      connection_->stub->SaveState(&context, request);
  std::string state;
  v1::StateChunk chunk;
  while (reader->Read(&chunk)) state += chunk.data();
  QCAL_CLIENT_RETURN_IF_ERROR(internal::FromGrpcStatus(reader->Finish()));
  return state;
}

absl::StatusOr<v1::ModelInfo> Client::LoadState(std::string_view model, std::string_view state,
                                                const LoadStateOptions& options) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  grpc::ClientContext context;
  connection_->ApplyTimeout(&context);
  v1::ModelInfo info;
  std::unique_ptr<grpc::ClientWriterInterface<v1::LoadStateRequest>> writer =
      connection_->stub->LoadState(&context, &info);
  v1::LoadStateRequest message;
  message.set_model(std::string(model));
  message.set_merge(options.merge);
  size_t offset = 0;
  do {  // at least one message, so that an empty state still names the model
    const size_t n = std::min(kMaxChunkBytes, state.size() - offset);
    message.set_data(std::string(state.substr(offset, n)));
    if (!writer->Write(message)) break;  // the server ended the stream; Finish() says why
    offset += n;
    message.clear_model();
    message.clear_merge();
  } while (offset < state.size());
  writer->WritesDone();
  QCAL_CLIENT_RETURN_IF_ERROR(internal::FromGrpcStatus(writer->Finish()));
  return info;
}

}  // namespace qcal
