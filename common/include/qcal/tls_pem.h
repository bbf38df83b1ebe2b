// TLS files checked before gRPC sees them, by the server (--tls-cert, --tls-key,
// --tls-client-ca) and the clients (--tls-ca, --tls-cert, --tls-key): a wrong file then gets a
// message naming it, where gRPC would fail the handshake later with a log line of its own (a
// client's mismatched key showed only "empty address list"). Checked with OpenSSL's libcrypto.
#ifndef QCAL_COMMON_TLS_PEM_H_
#define QCAL_COMMON_TLS_PEM_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace qcal {

// INVALID_ARGUMENT "<option> file '<path>': holds no PEM certificate" when `pem` (the file's
// text) holds no parsable PEM certificate (its first one is checked).
absl::Status CheckCertificatePem(absl::string_view option, const std::string& path,
                                 const std::string& pem);

// INVALID_ARGUMENT naming `key_option` and `key_path` when `key_pem` holds no unencrypted PEM
// private key, or one that does not belong to the first certificate of `cert_pem` (from
// `cert_option` '`cert_path`', checked with CheckCertificatePem first).
absl::Status CheckKeyMatchesCertificate(absl::string_view cert_option, const std::string& cert_path,
                                        const std::string& cert_pem, absl::string_view key_option,
                                        const std::string& key_path, const std::string& key_pem);

}  // namespace qcal

#endif  // QCAL_COMMON_TLS_PEM_H_
