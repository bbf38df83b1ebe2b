#include "client/cli/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/absl_string_view.h"
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

// Where a write to `path` should land: the file a symbolic link names (so the link survives the
// rename; a dangling link's target, relative to the link's directory), else `path` itself.
std::string FollowLinks(const std::string& path) {
  std::string current = path;
  for (int hops = 0; hops < 40; ++hops) {  // Linux's own limit on nested links
    struct stat info {};
    if (::lstat(current.c_str(), &info) != 0 || !S_ISLNK(info.st_mode)) return current;
    std::vector<char> target(static_cast<size_t>(info.st_size > 0 ? info.st_size : 4096) + 1);
    const ssize_t n = ::readlink(current.c_str(), target.data(), target.size() - 1);
    if (n <= 0) return current;
    std::string next(target.data(), static_cast<size_t>(n));
    current = next.front() == '/' ? next : absl::StrCat(Directory(current), "/", next);
  }
  return current;
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
  // The write renames a new file over the path: a device, FIFO or socket there would be
  // replaced (as root, /dev/null with it), never written to.
  if (::stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
    return MarkLocalFileError(absl::FailedPreconditionError(
        absl::StrCat(What(path, label),
                     ": not a regular file (a device, FIFO or socket); refusing to replace it")));
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
  const std::string target = FollowLinks(path);
  if (target != path) {
    if (absl::Status checked = CheckWritablePath(target, label); !checked.ok()) return checked;
  }
  const std::string directory = Directory(target);
  // ".NAME.XXXXXX" next to the target: hidden, and unique even when several writers race.
  std::string temp = absl::StrCat(directory, "/.", BaseName(target), ".XXXXXX");
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
  if (status.ok() && std::rename(temp.c_str(), target.c_str()) != 0) {
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
