#include "server/auth/token_file.h"

#include <openssl/sha.h>

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/base/names.h"

namespace qcal::server {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// The blank-separated fields of `line`.
std::vector<absl::string_view> Fields(absl::string_view line) {
  std::vector<absl::string_view> fields;
  size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && IsBlank(line[at])) ++at;
    const size_t start = at;
    while (at < line.size() && !IsBlank(line[at])) ++at;
    if (at > start) fields.push_back(line.substr(start, at - start));
  }
  return fields;
}

// Why `token` is no acceptable token (empty when it is one). Never quotes it.
std::string TokenProblem(absl::string_view token) {
  if (token.size() < kMinTokenBytes) {
    return absl::StrCat("the token is ", token.size(), " characters long; at least ",
                        kMinTokenBytes, " are required");
  }
  if (token.size() > kMaxTokenBytes) {
    return absl::StrCat("the token is longer than ", kMaxTokenBytes, " characters");
  }
  for (const char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return "the token holds a byte outside printable ASCII (it travels in an HTTP header)";
    }
  }
  return "";
}

absl::Status LineError(int line, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", reason));
}

}  // namespace

TokenDigest DigestToken(absl::string_view token) {
  TokenDigest digest{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
  return digest;
}

absl::StatusOr<TokenTable> ParseTokenFile(absl::string_view text) {
  TokenTable table;
  int number = 0;
  // Editors on Windows start UTF-8 files with a byte order mark; it is no part of the role.
  absl::ConsumePrefix(&text, "\xEF\xBB\xBF");
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::vector<absl::string_view> fields = Fields(line);
    if (fields.empty() || fields[0][0] == '#') continue;
    const std::optional<Role> role = RoleFromName(fields[0]);
    if (!role.has_value()) {
      return LineError(number,
                       "the first field is no role; expected reader, trainer or admin (ROLE "
                       "TOKEN [MODEL_PREFIX])");
    }
    if (fields.size() < 2)
      return LineError(number, "the token is missing (ROLE TOKEN [MODEL_PREFIX])");
    if (fields.size() > 3) {
      return LineError(number,
                       "more than three fields (ROLE TOKEN [MODEL_PREFIX]; a model prefix holds "
                       "no blanks)");
    }
    if (std::string problem = TokenProblem(fields[1]); !problem.empty()) {
      return LineError(number, problem);
    }
    TokenEntry entry;
    entry.role = *role;
    entry.digest = DigestToken(fields[1]);
    entry.line = number;
    if (fields.size() == 3) {
      if (!CheckName("model prefix", fields[2]).ok()) {
        return LineError(number,
                         "the model prefix is no valid name (1 to 1024 bytes of UTF-8 without "
                         "control characters)");
      }
      entry.model_prefix = std::string(fields[2]);
    }
    for (const TokenEntry& earlier : table.entries) {
      if (earlier.digest == entry.digest) {
        return LineError(number, absl::StrCat("the same token as line ", earlier.line,
                                              " (each token must be unique)"));
      }
    }
    table.entries.push_back(std::move(entry));
  }
  if (table.entries.empty()) {
    return absl::InvalidArgumentError("the file holds no token (it would refuse every call)");
  }
  return table;
}

}  // namespace qcal::server
