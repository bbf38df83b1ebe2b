// Exactly-once Record batches: per model, the last sequence applied for each client session
// (RecordRequest.session_id / sequence, calibration.proto), and the last one known durable.
// Bounded: the kMaxSessions sessions used last are kept, the least recently used is forgotten
// (its next batch then starts a new count at any sequence, as the proto says).
//
//   std::shared_ptr<SessionTable::Session> s = table.Touch(id);
//   absl::MutexLock hold(&s->mu);                 // held while the batch is checked and applied
//   QCAL_ASSIGN_OR_RETURN(bool next, SessionTable::Check(*s, sequence, where));
//   if (next && Apply(batch).ok()) s->applied = sequence;
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

namespace qcal::server {

// A session id is 1 to this many bytes (RecordRequest.session_id).
inline constexpr size_t kMaxSessionIdBytes = 128;

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

  SessionTable() = default;
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // The session `session_id`, created when new; it becomes the most recently used, and the
  // least recently used beyond kMaxSessions is forgotten.
  std::shared_ptr<Session> Touch(absl::string_view session_id) ABSL_LOCKS_EXCLUDED(mu_);

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
  // Replaces the table by `sessions` (applied sequences; durable 0), keeping the kMaxSessions
  // with the highest ids when there are more (a restored order of use is unknown).
  void Restore(const std::map<std::string, int64_t>& sessions) ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::shared_ptr<Session> session;
    // Its place in lru_ (front: most recently used).
    std::list<std::string>::iterator use;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> sessions_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_SESSION_TABLE_H_
