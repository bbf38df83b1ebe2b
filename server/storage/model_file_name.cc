#include "server/storage/model_file_name.h"

#include <openssl/evp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qcal::server {
namespace {

bool Plain(char c, bool first) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
         (c == '.' && !first);
}

}  // namespace

std::string ModelFileName(absl::string_view model) {
  std::string out;
  for (size_t i = 0; i < model.size(); ++i) {
    const char c = model[i];
    const std::string piece = Plain(c, i == 0)
                                  ? std::string(1, c)
                                  : absl::StrFormat("%%%02X", static_cast<unsigned char>(c));
    if (out.size() + piece.size() > kModelFilePrefixBytes) break;
    out += piece;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  EVP_Digest(model.data(), model.size(), digest, &digest_size, EVP_sha256(), nullptr);
  absl::StrAppend(&out, ".");
  for (int i = 0; i < 16; ++i) absl::StrAppendFormat(&out, "%02x", digest[i]);
  absl::StrAppend(&out, kModelFileSuffix);
  return out;
}

}  // namespace qcal::server
