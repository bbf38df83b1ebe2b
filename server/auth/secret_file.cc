#include "server/auth/secret_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace qcal::server {

absl::StatusOr<std::string> ReadSecretFile(absl::string_view flag, const std::string& path) {
  auto error = [&](absl::string_view reason) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", flag, " file '", path, "': ", reason));
  };
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return error(std::strerror(errno));
  if (!S_ISREG(info.st_mode)) return error("not a regular file");
  // Certificates and token files are kilobytes; a huge file is a mistake, not input.
  if (info.st_size > (16 << 20)) return error("larger than 16 MiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return error("read error");
  return text.str();
}

}  // namespace qcal::server
