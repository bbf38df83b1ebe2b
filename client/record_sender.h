// A session's background sender: owns the send queue, the thread that drains it and the Record
// stream that thread keeps open between flushes.
#ifndef QCAL_CLIENT_RECORD_SENDER_H_
#define QCAL_CLIENT_RECORD_SENDER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "client/connection.h"
#include "client/send_queue.h"
#include "qcal/client.h"

namespace qcal::internal {

// What a Record stream that ended with `status` applied before its error: the RecordResponse the
// server packs in the status details (an empty one when there is none).
v1::RecordResponse AppliedBeforeError(const grpc::Status& status);

class RecordSender {
 public:
  RecordSender(std::shared_ptr<Connection> connection, std::string model, SessionOptions options);
  // Sends what is queued, closes the stream and joins the thread.
  ~RecordSender();
  RecordSender(const RecordSender&) = delete;
  RecordSender& operator=(const RecordSender&) = delete;

  // ModelSession::Record and ::Flush (see qcal/client.h).
  absl::Status Record(std::string_view quantizer, const TensorView& tensor);
  absl::Status RecordPartial(std::string_view quantizer, const v1::PartialState& partial);
  absl::Status Flush();
  SessionStats Stats() const { return queue_.Stats(); }

 private:
  // The sender thread's loop.
  void Run();
  // Writes `batch` to the stream, opening one if none is open. On a broken stream returns the
  // status the stream ended with (and leaves no stream open).
  absl::Status Send(const Batch& batch);
  // Half-closes and finishes the open stream, if any, and reports what it applied (and did not)
  // to the queue's totals; returns the stream's status.
  absl::Status Finish();

  // Constant after construction.
  const std::shared_ptr<Connection> connection_;
  const std::string model_;
  const SessionOptions options_;

  SendQueue queue_;

  // Used by the sender thread only. A stream is open while writer_ is set.
  std::unique_ptr<grpc::ClientContext> context_;
  v1::RecordResponse response_;
  // Batches started on the open stream (a partial counts its PartialState.batches).
  int64_t stream_batches_ = 0;
  std::unique_ptr<grpc::ClientWriterInterface<v1::RecordRequest>> writer_;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_RECORD_SENDER_H_
