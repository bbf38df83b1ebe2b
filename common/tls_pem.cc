#include "qcal/tls_pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace qcal {
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

absl::Status Bad(absl::string_view option, const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(option, " file '", path, "': ", why));
}

std::unique_ptr<X509, X509Free> ReadCertificate(const std::string& pem) {
  std::unique_ptr<X509, X509Free> cert(
      PEM_read_bio_X509(Bio(pem).get(), nullptr, NoPassword, nullptr));
  ERR_clear_error();
  return cert;
}

}  // namespace

absl::Status CheckCertificatePem(absl::string_view option, const std::string& path,
                                 const std::string& pem) {
  if (ReadCertificate(pem) == nullptr) return Bad(option, path, "holds no PEM certificate");
  return absl::OkStatus();
}

absl::Status CheckKeyMatchesCertificate(absl::string_view cert_option, const std::string& cert_path,
                                        const std::string& cert_pem, absl::string_view key_option,
                                        const std::string& key_path, const std::string& key_pem) {
  std::unique_ptr<X509, X509Free> cert = ReadCertificate(cert_pem);
  if (cert == nullptr) return Bad(cert_option, cert_path, "holds no PEM certificate");
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(Bio(key_pem).get(), nullptr, NoPassword, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return Bad(key_option, key_path,
               "holds no PEM private key (or an encrypted one: only unencrypted keys are taken)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return Bad(
        key_option, key_path,
        absl::StrCat("does not match the certificate in ", cert_option, " '", cert_path, "'"));
  }
  return absl::OkStatus();
}

}  // namespace qcal
