// A session's background sender: owns the send queue (the resend buffer), the thread that drains
// it and the Record stream that thread keeps open between flushes. Exactly-once: the session has
// a random 16-byte id, every batch a sequence; a stream that breaks with UNAVAILABLE or CANCELLED
// is reopened with backoff (kReconnectInitialBackoff .. kReconnectMaxBackoff) and every batch
// not yet known durable is resent (the server drops those it applied), until
// SessionOptions::reconnect_deadline.
#ifndef QCAL_CLIENT_RECORD_SENDER_H_
#define QCAL_CLIENT_RECORD_SENDER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "client/send_queue.h"
#include "qcal/client.h"

namespace qcal::internal {

// What a Record stream that ended with `status` applied before its error: the RecordResponse the
// server packs in the status details (an empty one when there is none).
v1::RecordResponse AppliedBeforeError(const grpc::Status& status);

// 16 random bytes: a session id no other client picks (RecordRequest.session_id).
std::string NewSessionId();

class RecordSender {
 public:
  RecordSender(std::shared_ptr<Connection> connection, std::string model, SessionOptions options);
  // Sends what is queued, closes the stream and joins the thread (reconnecting meanwhile, up to
  // reconnect_deadline, if the stream breaks).
  ~RecordSender();
  RecordSender(const RecordSender&) = delete;
  RecordSender& operator=(const RecordSender&) = delete;

  // ModelSession::Record, ::Flush and ::Commit (see qcal/client.h).
  absl::Status Record(std::string_view quantizer, const TensorView& tensor);
  absl::Status RecordPartial(std::string_view quantizer, const v1::PartialState& partial);
  absl::Status Flush();
  absl::StatusOr<CommitResult> Commit();
  SessionStats Stats() const { return queue_.Stats(); }

 private:
  // The sender thread's loop.
  void Run();
  // Writes `batch` to the stream, opening one if none is open. On a broken stream returns the
  // status the stream ended with (and leaves no stream open).
  absl::Status Send(const Batch& batch);
  // Half-closes and finishes the open stream, if any, and reports what it applied to the queue;
  // returns the stream's status.
  absl::Status Finish();
  // The Commit RPC for this session; reports the sequences to the queue.
  absl::Status CommitNow();
  // After a stream (or, with `commit`, a Commit) failed with `status`: UNAVAILABLE or CANCELLED
  // within the reconnect deadline waits the backoff and rewinds the queue (every held batch is
  // resent); anything else, or past the deadline, fails the queue. True when it will retry.
  bool Recover(const absl::Status& status, bool commit = false);
  // queue_.Fail(status), and a new session id for the batches recorded after it.
  void FailSession(const absl::Status& status);

  // Constant after construction.
  const std::shared_ptr<Connection> connection_;
  const std::string model_;
  const SessionOptions options_;

  SendQueue queue_;

  // Used by the sender thread only. The session id; a new one after FailSession.
  std::string session_id_;
  // A stream is open while writer_ is set.
  std::unique_ptr<grpc::ClientContext> context_;
  v1::RecordResponse response_;
  std::unique_ptr<grpc::ClientWriterInterface<v1::RecordRequest>> writer_;
  // Since when the server is unreachable (the first failure not followed by a stream that got
  // through), and the next backoff.
  std::optional<absl::Time> outage_since_;
  // A stream of this session got through to a server once (the deadline's error says "again").
  bool reached_ = false;
  absl::Duration backoff_ = kReconnectInitialBackoff;
  // Since when Commit fails with UNAVAILABLE (a server that is reachable but cannot write: a full
  // disk), and its next backoff. Kept apart from the outage above: the resends between two tries
  // get through and would restart that clock for ever. Cleared by a Commit that succeeds, or a
  // durable sequence that moves on (the server wrote after all).
  std::optional<absl::Time> commit_failing_since_;
  absl::Duration commit_backoff_ = kReconnectInitialBackoff;
  // When the last Commit call started.
  absl::Time commit_sent_;
  // Data bytes written to Record streams (SessionOptions::progress).
  int64_t sent_bytes_ = 0;

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_RECORD_SENDER_H_
