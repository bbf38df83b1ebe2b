// Reads the small files the security flags name (--auth-tokens, --tls-cert, --tls-key,
// --tls-client-ca) whole, with an error that names the flag and the file.
#ifndef QCAL_SERVER_AUTH_SECRET_FILE_H_
#define QCAL_SERVER_AUTH_SECRET_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qcal::server {

// The file's bytes; INVALID_ARGUMENT "cannot read FLAG file 'PATH': REASON" (strerror, "not a
// regular file", "larger than 16 MiB") when it cannot be read.
absl::StatusOr<std::string> ReadSecretFile(absl::string_view flag, const std::string& path);

}  // namespace qcal::server

#endif  // QCAL_SERVER_AUTH_SECRET_FILE_H_
