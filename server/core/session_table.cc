#include "server/core/session_table.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

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

std::shared_ptr<SessionTable::Session> SessionTable::Touch(absl::string_view session_id) {
  absl::MutexLock lock(&mu_);
  if (auto it = sessions_.find(session_id); it != sessions_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.use);
    return it->second.session;
  }
  lru_.emplace_front(session_id);
  auto session = std::make_shared<Session>();
  sessions_.emplace(lru_.front(), Entry{.session = session, .use = lru_.begin()});
  if (sessions_.size() > kMaxSessions) {
    // A stream still holding the forgotten session finishes its batch on it; only the table
    // forgets it.
    sessions_.erase(lru_.back());
    lru_.pop_back();
  }
  return session;
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

void SessionTable::Restore(const std::map<std::string, int64_t>& sessions) {
  absl::MutexLock lock(&mu_);
  sessions_.clear();
  lru_.clear();
  // Highest ids last in, so they are the ones kept (front of lru_).
  for (const auto& [id, applied] : sessions) {
    lru_.emplace_front(id);
    auto session = std::make_shared<Session>();
    session->applied.store(applied);
    sessions_.emplace(id, Entry{.session = std::move(session), .use = lru_.begin()});
    if (sessions_.size() > kMaxSessions) {
      sessions_.erase(lru_.back());
      lru_.pop_back();
    }
  }
}

size_t SessionTable::size() const {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

}  // namespace qcal::server
