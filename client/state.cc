// Client::SaveState and Client::LoadState: a model's StateFile, streamed in pieces.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/connection.h"
#include "client/status_macros.h"
#include "qcal/client.h"
#include "qcal/local_file.h"
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

namespace {

// Closes the descriptor it holds.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  int get() const { return fd_; }

 private:
  const int fd_;
};

// Up to `limit` bytes of `fd`, fewer only at the end of the file.
absl::StatusOr<std::string> ReadPiece(int fd, size_t limit, const std::string& what) {
  std::string piece(limit, '\0');
  size_t done = 0;
  while (done < limit) {
    const ssize_t n = ::read(fd, piece.data() + done, limit - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LocalFileError(errno, what);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  piece.resize(done);
  return piece;
}

}  // namespace

absl::StatusOr<v1::ModelInfo> Client::LoadStateFile(std::string_view model, const std::string& path,
                                                    const LoadStateOptions& options) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  const std::string what = absl::StrCat("cannot read '", path, "'");
  // O_NONBLOCK: opening a FIFO must not wait for a writer before fstat refuses it.
  const Descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return LocalFileError(errno, what);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return LocalFileError(errno, what);
  if (!S_ISREG(info.st_mode)) {
    return MarkLocalFileError(absl::FailedPreconditionError(
        absl::StrCat(what, S_ISDIR(info.st_mode) ? ": a directory, not a regular file"
                                                 : ": not a regular file")));
  }
  // The first piece is read before the call starts: a file that cannot be read sends nothing.
  QCAL_CLIENT_ASSIGN_OR_RETURN(std::string piece, ReadPiece(fd.get(), kMaxChunkBytes, what));
  grpc::ClientContext context;
  connection_->ApplyTimeout(&context);
  v1::ModelInfo model_info;
  std::unique_ptr<grpc::ClientWriterInterface<v1::LoadStateRequest>> writer =
      connection_->stub->LoadState(&context, &model_info);
  v1::LoadStateRequest message;
  message.set_model(std::string(model));
  message.set_merge(options.merge);
  for (;;) {
    const bool last = piece.size() < kMaxChunkBytes;
    message.set_data(std::move(piece));
    if (!writer->Write(message)) break;  // the server ended the stream; Finish() says why
    if (last) break;
    message.clear_model();
    message.clear_merge();
    absl::StatusOr<std::string> next = ReadPiece(fd.get(), kMaxChunkBytes, what);
    if (!next.ok()) {
      context.TryCancel();  // half a file must not load; the server sees the call cancelled
      writer->Finish().ok();
      return next.status();
    }
    if (next->empty()) break;
    piece = *std::move(next);
  }
  writer->WritesDone();
  QCAL_CLIENT_RETURN_IF_ERROR(internal::FromGrpcStatus(writer->Finish()));
  return model_info;
}

}  // namespace qcal
