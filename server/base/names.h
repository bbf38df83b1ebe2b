// The server's check of every name a request carries (model, quantizer, ONNX tensor of a
// tensor_map): the client's rule, from the same code (qcal/names.h, target qcal_names). A name
// is 1 to 1024 bytes of UTF-8 without control characters, so none can forge a line of the
// TensorRT calibration cache.
//
//   QCAL_RETURN_IF_ERROR(CheckName("model name", config.name));
#ifndef QCAL_SERVER_BASE_NAMES_H_
#define QCAL_SERVER_BASE_NAMES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "qcal/names.h"

namespace qcal::server {

// OK for a valid name; otherwise INVALID_ARGUMENT whose message starts with `what`, shows the
// name escaped and says which rule it breaks.
inline absl::Status CheckName(absl::string_view what, absl::string_view name) {
  return qcal::CheckName(std::string_view(what.data(), what.size()),
                         std::string_view(name.data(), name.size()));
}

// `text` cut to 64 bytes and escaped for an error message (qcal/names.h).
inline std::string ShortForMessage(absl::string_view text) {
  return qcal::ShortForMessage(std::string_view(text.data(), text.size()));
}

}  // namespace qcal::server

#endif  // QCAL_SERVER_BASE_NAMES_H_
