#include "server/auth/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "server/auth/secret_file.h"

namespace qcal::server {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::unique_ptr<BIO, BioFree> Bio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Never prompts for a passphrase: an encrypted key fails to load.
int NoPassword(char*, int, int, void*) { return 0; }

absl::Status Bad(absl::string_view flag, const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(flag, " file '", path, "': ", why));
}

}  // namespace

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

  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(Bio(material.cert_pem).get(), nullptr, NoPassword, nullptr));
  ERR_clear_error();
  if (cert == nullptr) return Bad("--tls-cert", paths.cert, "holds no PEM certificate");
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(Bio(material.key_pem).get(), nullptr, NoPassword, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return Bad("--tls-key", paths.key,
               "holds no PEM private key (or an encrypted one: the server takes unencrypted keys)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Bad("--tls-key", paths.key,
               absl::StrCat("does not match the certificate in --tls-cert '", paths.cert, "'"));
  }
  if (!paths.client_ca.empty()) {
    text = ReadSecretFile("--tls-client-ca", paths.client_ca);
    if (!text.ok()) return text.status();
    material.client_ca_pem = *std::move(text);
    std::unique_ptr<X509, X509Free> ca(
        PEM_read_bio_X509(Bio(material.client_ca_pem).get(), nullptr, NoPassword, nullptr));
    ERR_clear_error();
    if (ca == nullptr) return Bad("--tls-client-ca", paths.client_ca, "holds no PEM certificate");
  }
  return material;
}

}  // namespace qcal::server
