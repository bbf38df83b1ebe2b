// What a model, quantizer or ONNX tensor name is: the client checks it before anything is sent,
// and qcal-server checks every name it receives by the same code (target qcal_names, no gRPC).
//
// A name is 1 to kMaxNameBytes bytes of valid UTF-8 without control characters (U+0000..U+001F
// and U+007F). Why: proto3 `string` fields must hold valid UTF-8 (protobuf refuses to serialize
// anything else, which gRPC reports as a bare INTERNAL error), and a name is written as one line
// of the TensorRT calibration cache text, where a newline would start a forged entry.
//
//   QCAL_CLIENT_RETURN_IF_ERROR(qcal::CheckName("quantizer name", quantizer));
#ifndef QCAL_CLIENT_NAMES_H_
#define QCAL_CLIENT_NAMES_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace qcal {

// Longest accepted name, in bytes of UTF-8.
inline constexpr size_t kMaxNameBytes = 1024;

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF), the rule protobuf applies to `string` fields.
bool IsValidUtf8(std::string_view text);

// OK for a valid name; otherwise INVALID_ARGUMENT whose message starts with `what` (e.g.
// "model name"), shows the name with unprintable bytes escaped, and says which rule it breaks.
absl::Status CheckName(std::string_view what, std::string_view name);

// `text` as an error message shows a name or other value that came from outside: at most its
// first 64 bytes (then "..."), escaped so that the message is printable UTF-8 whatever `text`
// holds. Error messages quote values with it so that a megabyte-long or binary name cannot make
// the message itself too large to send or unreadable.
std::string ShortForMessage(std::string_view text);

// OK when `text` is valid UTF-8 (free text such as a method or target, which the server checks
// further); otherwise INVALID_ARGUMENT naming `what`.
absl::Status CheckUtf8(std::string_view what, std::string_view text);

}  // namespace qcal

#endif  // QCAL_CLIENT_NAMES_H_
