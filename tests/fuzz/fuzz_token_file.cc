// The --auth-tokens file parser (ParseTokenFile, server/auth/token_file.h) on arbitrary text: a
// parsed table holds at least one token, each entry on a line of the file; a refused file's
// message never quotes a token-sized field of the file (tokens must not reach the logs).
// Seeds: corpus/token_file.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "server/auth/token_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<qcal::server::TokenTable> table = qcal::server::ParseTokenFile(text);
  if (table.ok()) {
    const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
    if (table->entries.empty()) std::abort();
    for (const qcal::server::TokenEntry& entry : table->entries) {
      if (entry.line < 1 || entry.line > lines) std::abort();
    }
    return 0;
  }
  // Fields long enough to be a token (24 bytes and more: shorter runs without blanks could match
  // the message's own words) must not appear in the message.
  const std::string message(table.status().message());
  for (absl::string_view field : absl::StrSplit(text, absl::ByAnyChar(" \t\r\n"))) {
    if (field.size() >= 24 && absl::StrContains(message, field)) {
      std::fprintf(stderr, "fuzz_token_file: the error quotes a field of the file: %s\n",
                   message.c_str());
      std::abort();
    }
  }
  return 0;
}
