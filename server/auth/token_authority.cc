#include "server/auth/token_authority.h"

#include <openssl/crypto.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/auth/secret_file.h"

namespace qcal::server {

absl::StatusOr<std::unique_ptr<TokenAuthority>> TokenAuthority::FromFile(std::string path) {
  absl::StatusOr<std::string> text = ReadSecretFile("--auth-tokens", path);
  if (!text.ok()) return text.status();
  absl::StatusOr<TokenTable> table = ParseTokenFile(*text);
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-tokens file '", path, "': ", table.status().message()));
  }
  return std::unique_ptr<TokenAuthority>(new TokenAuthority(std::move(path), *std::move(table)));
}

absl::Status TokenAuthority::Reload() {
  absl::StatusOr<std::unique_ptr<TokenAuthority>> fresh = FromFile(path_);
  if (!fresh.ok()) return fresh.status();
  std::shared_ptr<const TokenTable> table;
  {
    absl::MutexLock lock(&(*fresh)->mutex_);
    table = (*fresh)->table_;
  }
  absl::MutexLock lock(&mutex_);
  table_ = std::move(table);
  return absl::OkStatus();
}

absl::StatusOr<Grant> TokenAuthority::Authenticate(absl::string_view token) const {
  std::shared_ptr<const TokenTable> table;
  {
    absl::MutexLock lock(&mutex_);
    table = table_;
  }
  const TokenDigest digest = DigestToken(token);
  // Every entry is compared, whatever matched before: no early exit.
  const TokenEntry* found = nullptr;
  for (const TokenEntry& entry : table->entries) {
    const bool equal = CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) == 0;
    if (equal) found = &entry;
  }
  if (found == nullptr) {
    return absl::UnauthenticatedError(
        "the call's bearer token is not one of the server's (--auth-tokens)");
  }
  return Grant{.role = found->role, .model_prefix = found->model_prefix};
}

size_t TokenAuthority::size() const {
  absl::MutexLock lock(&mutex_);
  return table_->entries.size();
}

}  // namespace qcal::server
