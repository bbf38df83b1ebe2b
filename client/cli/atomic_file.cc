#include "client/cli/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/absl_string_view.h"
#include "qcal/local_file.h"

namespace qcal::cli {
namespace {

std::string What(const std::string& path, std::string_view label) {
  return absl::StrCat("cannot write ", internal::ToAbsl(label), "'", path, "'");
}

// The directory part of `path` ("." for a bare name, "/" for "/x").
std::string Directory(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

absl::Status WriteAll(int fd, std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "");
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckWritablePath(const std::string& path, std::string_view label) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return MarkLocalFileError(absl::FailedPreconditionError(
        absl::StrCat(What(path, label), ": a directory, not a regular file")));
  }
  if (path.empty() || path.back() == '/') {
    return MarkLocalFileError(
        absl::InvalidArgumentError(absl::StrCat(What(path, label), ": not a file name")));
  }
  const std::string directory = Directory(path);
  if (::stat(directory.c_str(), &info) != 0) return LocalFileError(errno, What(path, label));
  if (!S_ISDIR(info.st_mode)) return LocalFileError(ENOTDIR, What(path, label));
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes,
                                 std::string_view label) {
  const std::string what = What(path, label);
  if (absl::Status checked = CheckWritablePath(path, label); !checked.ok()) return checked;
  const std::string directory = Directory(path);
  // ".NAME.XXXXXX" next to the target: hidden, and unique even when several writers race.
  std::string temp = absl::StrCat(directory, "/.", BaseName(path), ".XXXXXX");
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return LocalFileError(errno, what);
  temp.assign(name.data());
  // mkostemp creates 0600; a state file is an ordinary file (0666 less the umask).
  const mode_t umask_value = ::umask(0);
  ::umask(umask_value);
  absl::Status status = WriteAll(fd, bytes);
  if (status.ok() && ::fchmod(fd, 0666 & ~umask_value) != 0)
    status = absl::ErrnoToStatus(errno, "");
  if (status.ok() && ::fsync(fd) != 0) status = absl::ErrnoToStatus(errno, "");
  if (::close(fd) != 0 && status.ok()) status = absl::ErrnoToStatus(errno, "");
  if (status.ok() && std::rename(temp.c_str(), path.c_str()) != 0) {
    status = absl::ErrnoToStatus(errno, "");
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    // ErrnoToStatus(e, "") gives ": REASON"; keep its code, name the file.
    return MarkLocalFileError(absl::Status(status.code(), absl::StrCat(what, status.message())));
  }
  // The rename is durable once the directory is synced; a failure here leaves a complete file.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

}  // namespace qcal::cli
