// The server's tokens (--auth-tokens FILE): authenticates a bearer token to a Grant, and reloads
// the file on SIGHUP (rotation). A call takes its grant once, when it starts: calls in flight keep
// theirs across a reload (a Record stream is not cut), new calls see the new table. A reload that
// fails keeps the old table.
//
// Lookup hashes the presented token (SHA-256) and compares it with every entry's digest in
// constant time (CRYPTO_memcmp, over all entries, no early exit), so the time taken says nothing
// about how much of a token matched. No token text is kept, logged or put in a message.
//
//   QCAL_ASSIGN_OR_RETURN(auto tokens, TokenAuthority::FromFile(path));
//   absl::StatusOr<Grant> grant = tokens->Authenticate(presented);
#ifndef QCAL_SERVER_AUTH_TOKEN_AUTHORITY_H_
#define QCAL_SERVER_AUTH_TOKEN_AUTHORITY_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/auth/permissions.h"
#include "server/auth/token_file.h"

namespace qcal::server {

class TokenAuthority {
 public:
  // Reads and parses `path`; INVALID_ARGUMENT "--auth-tokens file 'PATH': line N: REASON"
  // (ParseTokenFile's), or ReadSecretFile's error.
  static absl::StatusOr<std::unique_ptr<TokenAuthority>> FromFile(std::string path);

  // Reads the file again and swaps the table in; on any error (FromFile's) keeps the old one and
  // returns the error. Thread-safe.
  absl::Status Reload();

  // The grant of `token`; UNAUTHENTICATED "the call's bearer token is not one of the server's
  // (--auth-tokens)" when no entry matches. Thread-safe.
  absl::StatusOr<Grant> Authenticate(absl::string_view token) const;

  // Entries in the current table.
  size_t size() const;
  const std::string& path() const { return path_; }

 private:
  TokenAuthority(std::string path, TokenTable table)
      : path_(std::move(path)), table_(std::make_shared<const TokenTable>(std::move(table))) {}

  const std::string path_;
  mutable absl::Mutex mutex_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_AUTH_TOKEN_AUTHORITY_H_
