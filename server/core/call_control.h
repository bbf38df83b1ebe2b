// What the core may ask of the call it serves, without gRPC types: whether the caller gave up,
// and the call's deadline. The gRPC front-end adapts grpc::ServerContext to it; tests and
// in-process callers use NoCallControl.
//
//   absl::StatusOr<Reservation> r = budget.Reserve(bytes, call);   // waits, unless cancelled
#ifndef QCAL_SERVER_CORE_CALL_CONTROL_H_
#define QCAL_SERVER_CORE_CALL_CONTROL_H_

#include "absl/time/time.h"

namespace qcal::server {

class CallControl {
 public:
  virtual ~CallControl() = default;
  // The caller cancelled the call (or gRPC did, its deadline having passed). Cheap: a waiting
  // core function polls it.
  virtual bool Cancelled() const = 0;
  // When the caller stops waiting for the answer; absl::InfiniteFuture() when it set none.
  virtual absl::Time Deadline() const = 0;
};

// A call that is never cancelled and has no deadline.
class NoCallControl final : public CallControl {
 public:
  bool Cancelled() const override { return false; }
  absl::Time Deadline() const override { return absl::InfiniteFuture(); }
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_CALL_CONTROL_H_
