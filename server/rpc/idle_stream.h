// The --stream-idle-seconds watch of one client-streaming call (Record, UploadOnnx, LoadState,
// ExportOnnx's request stream): registers it with the core's StreamWatchdog and, when the
// watchdog finds it idle, ends the gRPC call with a status that says why (CANCELLED, naming the
// call, the model once known, and --stream-idle-seconds) rather than gRPC's bare "Cancelled on
// the server side" of ServerContext::TryCancel. CANCELLED, not DEADLINE_EXCEEDED: qcal's clients
// reopen a Record stream that the server cancelled (client/record_sender.cc).
//
//   IdleStream idle(core_.stream_watchdog(), context, "UploadOnnx", "the ONNX model ... dropped");
//   idle.Reading();
//   while (reader->Read(&request)) { idle.Busy(); idle.Model(request.model()); ...;
//                                    idle.Reading(); }
//   if (idle.EndReading()) return idle.status();  // before using what was received: dropped
#ifndef QCAL_SERVER_RPC_IDLE_STREAM_H_
#define QCAL_SERVER_RPC_IDLE_STREAM_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/stream_watchdog.h"

namespace qcal::server {

class IdleStream {
 public:
  // `call` names the method ("UploadOnnx"); `dropped` tells the client what became of what it
  // sent ("the ONNX model it sent was dropped; the model is unchanged"). `context` must outlive
  // this object (it is the handler's).
  IdleStream(StreamWatchdog& watchdog, grpc::ServerContext* context, absl::string_view call,
             absl::string_view dropped);
  IdleStream(const IdleStream&) = delete;
  IdleStream& operator=(const IdleStream&) = delete;

  // The handler starts waiting for the client's next message: the idle clock runs.
  void Reading() { watch_.Reading(); }
  // A message arrived, or the handler is done reading: the clock stops.
  void Busy() { watch_.Busy(); }
  // The model the stream names (messages after the first may leave it empty: the first name
  // stays), for the status and the server's log line.
  void Model(absl::string_view model);

  // The handler is done reading (a Read() returned false): stops the clock for good. True when
  // that was because the watchdog ended the call: the handler then drops what it received and
  // returns status(). (Stopping first closes the window in which a stream the client finished
  // could be ended after the handler looked, and used all the same.)
  bool EndReading();
  // EndReading, and also true when the client cancelled the call: Read() returns false then as
  // at a normal end, but what arrived is only a prefix of what the client meant to send (a
  // prefix of an ONNX model or state file can parse), so the handler drops it as well.
  bool EndReadingWhole();
  // CANCELLED with the message the client was given, e.g. "model 'm', UploadOnnx: the server
  // received nothing on this stream for --stream-idle-seconds 1 and ended it; the ONNX model it
  // sent was dropped; the model is unchanged".
  grpc::Status status() const;

 private:
  std::string Message() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // From the watchdog's thread: ends the call with status()'s code and message.
  void End();

  grpc::ServerContext* const context_;
  const std::string call_;
  const std::string dropped_;
  const int64_t idle_seconds_;
  mutable absl::Mutex mu_;
  std::string model_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool client_cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // Last: destroyed first, so End() cannot run on a half-destroyed object.
  StreamWatchdog::Watch watch_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_RPC_IDLE_STREAM_H_
