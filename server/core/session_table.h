// Exactly-once Record batches: per model, the last sequence applied for each client session
// (RecordRequest.session_id / sequence, calibration.proto), and the last one known durable.
// Bounded: the kMaxSessions sessions used last are kept, the least recently used is forgotten
// (its next batch then starts a new count at any sequence, as the proto says). Each session held
// is charged SessionBytes to the state budget (--max-state-bytes), given back when it is
// forgotten or the table is destroyed (DeleteModel).
//
//   SessionTable table(budget);
//   QCAL_ASSIGN_OR_RETURN(std::shared_ptr<SessionTable::Session> s, table.Touch(id, where));
//   absl::MutexLock hold(&s->mu);                 // held while the batch is checked and applied
//   QCAL_ASSIGN_OR_RETURN(bool next, SessionTable::Check(*s, id, sequence, where));
//   if (!next) return;                            // a duplicate
//   if (!Apply(batch).ok()) { table.Forget(id, s); return; }   // a new session leaves no trace
//   s->applied = sequence;
//   table.Trim();                                 // forgets the least recently used past the bound
#ifndef QCAL_SERVER_CORE_SESSION_TABLE_H_
#define QCAL_SERVER_CORE_SESSION_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/core/state_budget.h"

namespace qcal::server {

// A session id is 1 to this many bytes (RecordRequest.session_id).
inline constexpr size_t kMaxSessionIdBytes = 128;

// What a session held costs in memory, charged to --max-state-bytes: kSessionBytes plus twice its
// id (the table's key and its node in the order of use each hold a copy). Measured as the growth
// of qcal-server's resident memory over 30000 and 60000 Record streams each bringing a new
// session (no --data-dir): about 926 bytes a session of 16-byte ids (qcal's clients' own), 1150
// of 128-byte ids. The table's own allocations are less (290 and 514 bytes, glibc's malloc
// counting 65536 sessions alone); the rest is the heap the streams' short-lived blocks leave
// between the sessions' long-lived ones.
inline constexpr int64_t kSessionBytes = 896;
int64_t SessionBytes(absl::string_view session_id);

// A session's sequences: the last batch applied and the last one durable (0: none).
struct SessionSequences {
  int64_t applied = 0;
  int64_t durable = 0;
};

// OK for an id of 1 to kMaxSessionIdBytes bytes; INVALID_ARGUMENT naming `where` otherwise.
absl::Status CheckSessionId(absl::string_view session_id, absl::string_view where);

// A session id for messages: its bytes in hex (clients pick random bytes), cut to 32 bytes.
std::string SessionForMessage(absl::string_view session_id);

class SessionTable {
 public:
  static constexpr size_t kMaxSessions = 65536;

  struct Session {
    // Held from the check of a batch's sequence until it is applied and `applied` advanced, so
    // two streams of one session (a client reconnecting while its old stream is torn down) never
    // both apply the same sequence.
    absl::Mutex mu;
    // Written under `mu` (applied) or the table's lock (durable); read anywhere.
    std::atomic<int64_t> applied{0};
    std::atomic<int64_t> durable{0};
  };

  // Sessions are charged to `budget` (null: counted against nothing), which outlives the table.
  // `max_sessions` >= 1 (another bound than kMaxSessions is for tests).
  explicit SessionTable(StateBudget* budget = nullptr, size_t max_sessions = kMaxSessions)
      : max_sessions_(max_sessions), charge_(budget) {}
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // The session `session_id`; it becomes the most recently used. A new one is charged
  // SessionBytes first: RESOURCE_EXHAUSTED naming `where`, the session and --max-state-bytes
  // when the budget has no room (nothing changes). A new session is held beyond max_sessions
  // until Trim (after its batch is applied) or Forget (its batch was refused), so that a refused
  // batch forgets no other session; sessions the table held beyond max_sessions before (batches
  // of new sessions being applied concurrently) are forgotten when a new one is added.
  absl::StatusOr<std::shared_ptr<Session>> Touch(absl::string_view session_id,
                                                 absl::string_view where) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets `session` (as Touch returned it for `session_id`), giving its charge back, when no
  // batch of it was applied and no other caller holds it: a new session whose batch was refused.
  // The caller may hold session->mu.
  void Forget(absl::string_view session_id, const std::shared_ptr<Session>& session)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets the least recently used sessions beyond max_sessions, giving their charges back.
  void Trim() ABSL_LOCKS_EXCLUDED(mu_);

  // Whether the batch `sequence` of `session` (whose `mu` the caller holds) is the next one:
  // true to apply it, false for a duplicate (at or below applied: drop it). For a session with
  // no batch yet any sequence is the next. FAILED_PRECONDITION naming `where`, the session and
  // the missing sequences for one past applied + 1.
  static absl::StatusOr<bool> Check(const Session& session, absl::string_view session_id,
                                    int64_t sequence, absl::string_view where);

  // {0, 0} for a session the table does not hold.
  SessionSequences Get(absl::string_view session_id) const ABSL_LOCKS_EXCLUDED(mu_);
  // Every session's applied sequence, in session_id order (ModelSnapshot::sessions).
  std::map<std::string, int64_t> Applied() const ABSL_LOCKS_EXCLUDED(mu_);
  // Raises each listed session's durable sequence to the given one (never above what it had
  // applied, never lowering it); sessions the table no longer holds are skipped.
  void MarkDurable(const std::map<std::string, int64_t>& sessions) ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the table by `sessions` (applied sequences; durable 0), keeping the max_sessions
  // with the highest ids when there are more (a restored order of use is unknown), and charges
  // them instead of the sessions it held: RESOURCE_EXHAUSTED naming `where` and --max-state-bytes
  // when the budget has no room (nothing changes).
  absl::Status Restore(const std::map<std::string, int64_t>& sessions, absl::string_view where)
      ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  // Bytes charged for the sessions held: their SessionBytes.
  int64_t charged_bytes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::shared_ptr<Session> session;
    // Its place in lru_ (front: most recently used).
    std::list<std::string>::iterator use;
  };
  // Forgets the least recently used session; lru_ is not empty.
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_sessions_;
  mutable absl::Mutex mu_;
  StateBudget::Charge charge_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Entry> sessions_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_SESSION_TABLE_H_
