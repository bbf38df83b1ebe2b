#include "server/core/session_table.h"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/base/status_util.h"

namespace qcal::server {

absl::Status CheckSessionId(absl::string_view session_id, absl::string_view where) {
  if (!session_id.empty() && session_id.size() <= kMaxSessionIdBytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(where, ": session_id has ", session_id.size(),
                                                 " bytes; a session id is 1 to ",
                                                 kMaxSessionIdBytes, " bytes"));
}

std::string SessionForMessage(absl::string_view session_id) {
  const bool cut = session_id.size() > 32;
  return absl::StrCat(absl::BytesToHexString(session_id.substr(0, 32)), cut ? "..." : "");
}

int64_t SessionBytes(absl::string_view session_id) {
  return kSessionBytes + 2 * static_cast<int64_t>(session_id.size());
}

absl::StatusOr<std::shared_ptr<SessionTable::Session>> SessionTable::Touch(
    absl::string_view session_id, absl::string_view where) {
  absl::MutexLock lock(&mu_);
  if (auto it = sessions_.find(session_id); it != sessions_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.use);
    return it->second.session;
  }
  QCAL_RETURN_IF_ERROR(
      charge_.Resize(charge_.bytes() + SessionBytes(session_id),
                     absl::StrCat(where, ": new session ", SessionForMessage(session_id))));
  // Sessions left beyond the bound by batches that were being applied meanwhile.
  while (sessions_.size() > max_sessions_) EvictLocked();
  lru_.emplace_front(session_id);
  auto session = std::make_shared<Session>();
  sessions_.emplace(lru_.front(), Entry{.session = session, .use = lru_.begin()});
  return session;
}

void SessionTable::Forget(absl::string_view session_id, const std::shared_ptr<Session>& session) {
  absl::MutexLock lock(&mu_);
  const auto it = sessions_.find(session_id);
  // Copies of a session are made only here, under mu_: a count of 2 (the table's and the
  // caller's) means no other stream can be waiting to apply a batch of it.
  if (it == sessions_.end() || it->second.session != session || session.use_count() != 2 ||
      session->applied.load() != 0) {
    return;
  }
  lru_.erase(it->second.use);
  sessions_.erase(it);
  charge_.Settle(charge_.bytes() - SessionBytes(session_id));
}

void SessionTable::Trim() {
  absl::MutexLock lock(&mu_);
  while (sessions_.size() > max_sessions_) EvictLocked();
}

void SessionTable::EvictLocked() {
  // A stream still holding the forgotten session finishes its batch on it; only the table
  // forgets it.
  charge_.Settle(charge_.bytes() - SessionBytes(lru_.back()));
  sessions_.erase(lru_.back());
  lru_.pop_back();
}

absl::StatusOr<bool> SessionTable::Check(const Session& session, absl::string_view session_id,
                                         int64_t sequence, absl::string_view where) {
  const int64_t applied = session.applied.load();
  if (applied == 0 || sequence == applied + 1) return true;
  if (sequence <= applied) return false;
  return absl::FailedPreconditionError(absl::StrCat(
      where, ": session ", SessionForMessage(session_id), " sent batch sequence ", sequence,
      " but its last applied batch is ", applied, ": sequence",
      sequence == applied + 2 ? absl::StrCat(" ", applied + 1, " is")
                              : absl::StrCat("s ", applied + 1, " to ", sequence - 1, " are"),
      " missing (lost by the server since it acknowledged them, or never sent); nothing was "
      "applied"));
}

SessionSequences SessionTable::Get(absl::string_view session_id) const {
  absl::MutexLock lock(&mu_);
  const auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return {};
  return {.applied = it->second.session->applied.load(),
          .durable = it->second.session->durable.load()};
}

std::map<std::string, int64_t> SessionTable::Applied() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int64_t> out;
  for (const auto& [id, entry] : sessions_) {
    if (const int64_t applied = entry.session->applied.load(); applied > 0)
      out.emplace(id, applied);
  }
  return out;
}

void SessionTable::MarkDurable(const std::map<std::string, int64_t>& sessions) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, sequence] : sessions) {
    const auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;
    Session& session = *it->second.session;
    const int64_t durable = std::min(sequence, session.applied.load());
    if (durable > session.durable.load()) session.durable.store(durable);
  }
}

absl::Status SessionTable::Restore(const std::map<std::string, int64_t>& sessions,
                                   absl::string_view where) {
  // The max_sessions highest ids are kept: charged before anything is replaced.
  int64_t bytes = 0;
  size_t kept = 0;
  for (auto it = sessions.rbegin(); it != sessions.rend() && kept < max_sessions_; ++it, ++kept) {
    bytes += SessionBytes(it->first);
  }
  absl::MutexLock lock(&mu_);
  QCAL_RETURN_IF_ERROR(charge_.Resize(
      bytes, absl::StrCat(where, ": a table of ", kept, " session", kept == 1 ? "" : "s")));
  sessions_.clear();
  lru_.clear();
  // Highest ids last in, so they are the ones kept (front of lru_).
  for (auto it = std::next(sessions.begin(), static_cast<std::ptrdiff_t>(sessions.size() - kept));
       it != sessions.end(); ++it) {
    lru_.emplace_front(it->first);
    auto session = std::make_shared<Session>();
    session->applied.store(it->second);
    sessions_.emplace(it->first, Entry{.session = std::move(session), .use = lru_.begin()});
  }
  return absl::OkStatus();
}

size_t SessionTable::size() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

int64_t SessionTable::charged_bytes() const {
  absl::MutexLock lock(&mu_);
  return charge_.bytes();
}

}  // namespace qcal::server
