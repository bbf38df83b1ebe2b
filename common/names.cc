#include "qcal/names.h"

#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/absl_string_view.h"

namespace qcal {
namespace {

constexpr size_t kNotFound = std::string_view::npos;
constexpr char kRule[] = "names are 1 to 1024 bytes of UTF-8 without control characters";
static_assert(kMaxNameBytes == 1024, "kRule states the limit");

// Offset of the first byte that does not start a well-formed UTF-8 sequence (Unicode 15, table
// 3-7), or kNotFound.
size_t FirstInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t continuation = 0;
    uint8_t low = 0x80, high = 0xBF;  // the range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      continuation = 1;
    } else if (lead == 0xE0) {
      continuation = 2;
      low = 0xA0;  // no overlong forms
    } else if (lead == 0xED) {
      continuation = 2;
      high = 0x9F;  // no UTF-16 surrogates
    } else if (lead >= 0xE1 && lead <= 0xEF) {
      continuation = 2;
    } else if (lead == 0xF0) {
      continuation = 3;
      low = 0x90;  // no overlong forms
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      continuation = 3;
    } else if (lead == 0xF4) {
      continuation = 3;
      high = 0x8F;  // nothing above U+10FFFF
    } else {
      return i;  // a continuation byte, C0, C1 or F5..FF
    }
    if (text.size() - i - 1 < continuation) return i;
    for (size_t k = 1; k <= continuation; ++k) {
      const uint8_t byte = static_cast<uint8_t>(text[i + k]);
      if (byte < (k == 1 ? low : 0x80) || byte > (k == 1 ? high : 0xBF)) return i;
    }
    i += continuation + 1;
  }
  return kNotFound;
}

// The name as a message shows it: at most its first 64 bytes (cut at a character boundary when
// it is UTF-8), escaped so that the message itself is printable UTF-8.
std::string Unquoted(std::string_view name, bool valid_utf8) {
  constexpr size_t kShown = 64;
  std::string_view head = name.substr(0, kShown);
  if (valid_utf8 && head.size() < name.size()) {
    while (!head.empty() && (static_cast<uint8_t>(name[head.size()]) & 0xC0) == 0x80) {
      head.remove_suffix(1);
    }
  }
  const absl::string_view text = internal::ToAbsl(head);
  return absl::StrCat(valid_utf8 ? absl::Utf8SafeCHexEscape(text) : absl::CHexEscape(text),
                      head.size() < name.size() ? "..." : "");
}

std::string Shown(std::string_view name, bool valid_utf8) {
  return absl::StrCat("'", Unquoted(name, valid_utf8), "'");
}

}  // namespace

std::string ShortForMessage(std::string_view text) {
  return Unquoted(text, FirstInvalidUtf8(text) == kNotFound);
}

bool IsValidUtf8(std::string_view text) { return FirstInvalidUtf8(text) == kNotFound; }

absl::Status CheckName(std::string_view what, std::string_view name) {
  const absl::string_view subject = internal::ToAbsl(what);
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(subject, " is empty; ", kRule));
  if (const size_t bad = FirstInvalidUtf8(name); bad != kNotFound) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %s is not valid UTF-8 (byte 0x%02x at offset %d); %s", subject,
                        Shown(name, false), static_cast<uint8_t>(name[bad]), bad, kRule));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const uint8_t byte = static_cast<uint8_t>(name[i]);
    if (byte < 0x20 || byte == 0x7F) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s %s contains control character 0x%02x at offset %d; %s", subject,
                          Shown(name, true), byte, i, kRule));
    }
  }
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(absl::StrFormat("%s %s is %d bytes long; %s", subject,
                                                      Shown(name, true), name.size(), kRule));
  }
  return absl::OkStatus();
}

absl::Status CheckUtf8(std::string_view what, std::string_view text) {
  if (const size_t bad = FirstInvalidUtf8(text); bad != kNotFound) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s %s is not valid UTF-8 (byte 0x%02x at offset %d)", internal::ToAbsl(what),
        Shown(text, false), static_cast<uint8_t>(text[bad]), bad));
  }
  return absl::OkStatus();
}

}  // namespace qcal
