// The --auth-tokens file (README, "Security"): one token a line,
//
//   # comment lines start with '#' (after optional blanks); blank lines are skipped
//   ROLE TOKEN [MODEL_PREFIX]
//
// fields separated by spaces or tabs (a trailing '\r' is ignored). ROLE is reader, trainer or
// admin; TOKEN is kMinTokenBytes to kMaxTokenBytes of printable ASCII without blanks (it travels
// in an HTTP header); MODEL_PREFIX, when present, limits the token to the models whose names start
// with it and must itself be a valid name (qcal/names.h) without blanks.
//
// The table holds SHA-256 digests of the tokens, never their text, so that neither the table
// nor its errors can leak one. Pure (no I/O): the fuzz target calls it on arbitrary bytes.
//
//   QCAL_ASSIGN_OR_RETURN(TokenTable table, ParseTokenFile(text));
#ifndef QCAL_SERVER_AUTH_TOKEN_FILE_H_
#define QCAL_SERVER_AUTH_TOKEN_FILE_H_

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth/role.h"

namespace qcal::server {

// Shorter tokens are refused: 16 characters of a random alphabet of 64 symbols are 96 bits,
// beyond guessing through a network service. `openssl rand -hex 32` makes a fitting one.
inline constexpr size_t kMinTokenBytes = 16;
// Longer ones are refused: far above any generated token, and it bounds what a client's
// authorization header makes the server hash.
inline constexpr size_t kMaxTokenBytes = 4096;

using TokenDigest = std::array<unsigned char, 32>;  // SHA-256

// SHA-256 of `token`.
TokenDigest DigestToken(absl::string_view token);

struct TokenEntry {
  Role role = Role::kReader;
  // Empty: every model.
  std::string model_prefix;
  TokenDigest digest{};
  // 1-based line in the file, for messages.
  int line = 0;
};

struct TokenTable {
  std::vector<TokenEntry> entries;
};

// The table of a token file's text. INVALID_ARGUMENT "line N: REASON" for the first bad line: a
// role other than reader/trainer/admin, a missing token, a token shorter than kMinTokenBytes or
// longer than kMaxTokenBytes or with a byte outside printable ASCII, a token already on an earlier
// line, a model prefix that is no valid name, more than three fields; INVALID_ARGUMENT as well for
// a file without any token (it would refuse every call). No message ever quotes a field of the
// file (a token written in the wrong column would be logged).
absl::StatusOr<TokenTable> ParseTokenFile(absl::string_view text);

}  // namespace qcal::server

#endif  // QCAL_SERVER_AUTH_TOKEN_FILE_H_
