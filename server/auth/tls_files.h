// The server's TLS material (--tls-cert, --tls-key, --tls-client-ca; README, "Security"), read
// and checked at start so that a wrong file stops the server with a message naming it, instead
// of gRPC or libmicrohttpd failing later with a log line of their own. Checked with OpenSSL: the
// certificate parses, the key parses and belongs to it, the client CA holds a certificate.
#ifndef QCAL_SERVER_AUTH_TLS_FILES_H_
#define QCAL_SERVER_AUTH_TLS_FILES_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace qcal::server {

struct TlsPaths {
  std::string cert;       // --tls-cert: PEM, the server's certificate (then its chain)
  std::string key;        // --tls-key: PEM, its private key (unencrypted)
  std::string client_ca;  // --tls-client-ca: PEM CA certificates; set: mutual TLS
};

// The PEM texts, checked.
struct TlsMaterial {
  std::string cert_pem;
  std::string key_pem;
  // Empty: clients need no certificate.
  std::string client_ca_pem;
};

// None when no path is set (plaintext). INVALID_ARGUMENT naming the flag and the file for:
// --tls-cert without --tls-key or the other way round, --tls-client-ca without them, a file that
// cannot be read (ReadSecretFile), a certificate or CA file holding no PEM certificate, a key file
// holding no PEM private key (or an encrypted one), and a key that does not match the
// certificate.
absl::StatusOr<std::optional<TlsMaterial>> LoadTlsMaterial(const TlsPaths& paths);

}  // namespace qcal::server

#endif  // QCAL_SERVER_AUTH_TLS_FILES_H_
