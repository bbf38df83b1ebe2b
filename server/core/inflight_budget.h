// The bytes that Record streams may hold in batches at once (--max-inflight-bytes). A stream
// reserves a batch's bytes (plus its float32 decode scratch) when the batch's header arrives and
// releases them once the batch is applied or dropped. A reservation that does not fit WAITS
// until others are released: the stream stops reading, and gRPC's flow control stalls its
// client (backpressure, not refusal). It gives up with RESOURCE_EXHAUSTED, naming the flag, when
// the wait would outlast the call's deadline (or, without one, after `max_wait`), and with
// CANCELLED as soon as the caller cancels.
//
//   InflightBudget budget(/*limit_bytes=*/2 << 30, absl::Seconds(60), &metrics);
//   QCAL_ASSIGN_OR_RETURN(InflightBudget::Reservation held, budget.Reserve(bytes, call));
//   ...                                   // assemble and apply the batch
//   held.Release();                       // or let it go out of scope
//
// No deadlock: a stream holds at most one reservation (its current batch), and a reservation
// larger than the whole limit (a batch plus its decode scratch can be) is granted once nothing
// else is reserved. Waiters are served first come, first served, so a large batch is not
// starved by a flow of small ones. Thread-safe.
#ifndef QCAL_SERVER_CORE_INFLIGHT_BUDGET_H_
#define QCAL_SERVER_CORE_INFLIGHT_BUDGET_H_

#include <cstdint>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/call_control.h"
#include "server/core/metrics.h"

namespace qcal::server {

class InflightBudget {
 public:
  // Bytes held by one batch until Release() or destruction. Move-only; an empty one holds none.
  class Reservation {
   public:
    Reservation() = default;
    ~Reservation() { Release(); }
    Reservation(Reservation&& other) noexcept;
    Reservation& operator=(Reservation&& other) noexcept;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;

    int64_t bytes() const { return bytes_; }
    // Gives the bytes back (waking waiters that now fit). Idempotent.
    void Release();

   private:
    friend class InflightBudget;
    Reservation(InflightBudget* budget, int64_t bytes) : budget_(budget), bytes_(bytes) {}

    InflightBudget* budget_ = nullptr;  // null: holds nothing
    int64_t bytes_ = 0;
  };

  // `limit_bytes` >= 1. `max_wait`: how long a call without a deadline may wait. `metrics` may
  // be null (no reporting); it must outlive this object otherwise.
  InflightBudget(int64_t limit_bytes, absl::Duration max_wait, Metrics* metrics);
  // Precondition: no reservation outstanding.
  ~InflightBudget() = default;
  InflightBudget(const InflightBudget&) = delete;
  InflightBudget& operator=(const InflightBudget&) = delete;

  // Reserves `bytes` (>= 0) for `call`'s next batch, waiting while they do not fit.
  // Errors: RESOURCE_EXHAUSTED naming --max-inflight-bytes when the wait ends unserved: at the
  // call's deadline less a margin (a tenth of the time left when the wait began, at most 1 s, so
  // that the status reaches the caller before its deadline does), or after max_wait when the call
  // has no deadline; CANCELLED when the call is cancelled while it waits (checked every
  // kCancelPoll). `what` names the batch in the messages ("model 'm', quantizer 'q'").
  absl::StatusOr<Reservation> Reserve(int64_t bytes, const CallControl& call,
                                      absl::string_view what);

  // How often a waiting reservation looks at CallControl::Cancelled (gRPC's synchronous API
  // offers no cancellation callback).
  static constexpr absl::Duration kCancelPoll = absl::Milliseconds(20);

  int64_t limit_bytes() const { return limit_bytes_; }
  // Bytes reserved now.
  int64_t reserved_bytes() const;
  // Reservations waiting now.
  int waiting() const;
  // Reservations that had to wait, since construction (granted, refused or cancelled).
  int64_t waits_total() const;

 private:
  void Release(int64_t bytes);
  // `bytes` fit now: within the limit, or alone when larger than the whole limit.
  bool FitsLocked(int64_t bytes) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reports reserved_ and the waiters to the metrics.
  void ReportLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const int64_t limit_bytes_;
  const absl::Duration max_wait_;
  Metrics* const metrics_;

  mutable absl::Mutex mu_;
  int64_t reserved_ ABSL_GUARDED_BY(mu_) = 0;
  // Tickets of the waiting reservations, oldest first; only the front one may be granted.
  std::deque<uint64_t> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t waits_total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_INFLIGHT_BUDGET_H_
