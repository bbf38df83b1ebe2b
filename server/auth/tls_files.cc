#include "server/auth/tls_files.h"

#include "absl/strings/str_cat.h"
#include "qcal/tls_pem.h"
#include "server/auth/secret_file.h"

namespace qcal::server {

absl::StatusOr<std::optional<TlsMaterial>> LoadTlsMaterial(const TlsPaths& paths) {
  if (paths.cert.empty() && paths.key.empty() && paths.client_ca.empty()) return std::nullopt;
  if (paths.cert.empty() || paths.key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together (the server's certificate and its key); "
        "--tls-client-ca needs both");
  }
  TlsMaterial material;
  absl::StatusOr<std::string> text = ReadSecretFile("--tls-cert", paths.cert);
  if (!text.ok()) return text.status();
  material.cert_pem = *std::move(text);
  text = ReadSecretFile("--tls-key", paths.key);
  if (!text.ok()) return text.status();
  material.key_pem = *std::move(text);

  if (absl::Status status = CheckKeyMatchesCertificate("--tls-cert", paths.cert, material.cert_pem,
                                                       "--tls-key", paths.key, material.key_pem);
      !status.ok()) {
    return status;
  }
  if (!paths.client_ca.empty()) {
    text = ReadSecretFile("--tls-client-ca", paths.client_ca);
    if (!text.ok()) return text.status();
    material.client_ca_pem = *std::move(text);
    if (absl::Status status =
            CheckCertificatePem("--tls-client-ca", paths.client_ca, material.client_ca_pem);
        !status.ok()) {
      return status;
    }
  }
  return material;
}

}  // namespace qcal::server
