#include "server/storage/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/storage/model_file_name.h"

namespace qcal::server {
namespace {

// `existed`: whether a previous file is there to stay (a new model's first write has none).
absl::Status Failed(const std::string& path, absl::string_view step, int error, bool existed) {
  return absl::UnavailableError(
      absl::StrCat("cannot write ", path, ": ", step, ": ", std::strerror(error),
                   existed ? "; the previous file stays" : "; no file was written"));
}

std::string RandomSuffix() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return absl::StrFormat(".%016x", random());
}

// Writes all of `bytes` to `fd`; the errno of the failing write, or 0.
int WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return 0;
}

}  // namespace

absl::Status SyncDirectory(int dir_fd, const std::string& dir) {
  if (::fsync(dir_fd) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot sync directory ", dir, ": fsync: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(int dir_fd, const std::string& dir, const std::string& name,
                                 absl::string_view bytes) {
  const std::string path = absl::StrCat(dir, "/", name);
  const std::string temp = absl::StrCat(kTempFilePrefix, name, RandomSuffix());
  const bool existed = ::faccessat(dir_fd, name.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0;
  const int fd = ::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Failed(path, absl::StrCat("create ", temp), errno, existed);
  // Every failure from here removes the temporary file: a full disk must not stay full of it.
  auto fail = [&](absl::string_view step, int error) {
    ::close(fd);
    ::unlinkat(dir_fd, temp.c_str(), 0);
    return Failed(path, step, error, existed);
  };
  if (const int error = WriteAll(fd, bytes); error != 0) {
    return fail(absl::StrCat("write of ", bytes.size(), " bytes"), error);
  }
  if (::fsync(fd) != 0) return fail("fsync", errno);
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlinkat(dir_fd, temp.c_str(), 0);
    return Failed(path, "close", error, existed);
  }
  if (::renameat(dir_fd, temp.c_str(), dir_fd, name.c_str()) != 0) {
    const int error = errno;
    ::unlinkat(dir_fd, temp.c_str(), 0);
    return Failed(path, "rename", error, existed);
  }
  if (::fsync(dir_fd) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "wrote ", path, " but could not sync its directory: fsync: ", std::strerror(errno),
        " (a power loss may bring back the previous file)"));
  }
  return absl::OkStatus();
}

absl::Status RemoveFileDurably(int dir_fd, const std::string& dir, const std::string& name) {
  if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
    return absl::UnavailableError(
        absl::StrCat("cannot remove ", dir, "/", name, ": ", std::strerror(errno)));
  }
  return SyncDirectory(dir_fd, dir);
}

}  // namespace qcal::server
