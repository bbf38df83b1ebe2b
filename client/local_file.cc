#include "qcal/local_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <new>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "client/absl_string_view.h"

namespace qcal {
namespace {

// The payload that marks a local-file error; its value is unused.
constexpr absl::string_view kLocalFilePayload = "type.qcal.dev/qcal.LocalFileError";

// Closes a file descriptor when it goes out of scope.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

absl::Status MarkLocalFileError(absl::Status status) {
  if (!status.ok()) status.SetPayload(kLocalFilePayload, absl::Cord());
  return status;
}

absl::Status LocalFileError(int errno_value, std::string_view what) {
  return MarkLocalFileError(absl::ErrnoToStatus(errno_value, internal::ToAbsl(what)));
}

bool IsLocalFileError(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kLocalFilePayload).has_value();
}

absl::StatusOr<std::string> ReadLocalFile(const std::string& path, std::string_view label) {
  const std::string what = absl::StrCat("cannot read ", internal::ToAbsl(label), "'", path, "'");
  // O_NONBLOCK: opening a FIFO must not wait for a writer before fstat refuses it.
  const Descriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) return LocalFileError(errno, what);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return LocalFileError(errno, what);
  if (!S_ISREG(info.st_mode)) {
    return MarkLocalFileError(absl::FailedPreconditionError(
        absl::StrCat(what, S_ISDIR(info.st_mode) ? ": a directory, not a regular file"
                                                 : ": not a regular file")));
  }
  std::string content;
  try {
    content.resize(static_cast<size_t>(info.st_size));
  } catch (const std::bad_alloc&) {
    return MarkLocalFileError(absl::ResourceExhaustedError(
        absl::StrCat(what, ": its ", info.st_size, " bytes do not fit in memory")));
  } catch (const std::length_error&) {
    return MarkLocalFileError(absl::ResourceExhaustedError(
        absl::StrCat(what, ": its ", info.st_size, " bytes do not fit in memory")));
  }
  // The file may shrink (or grow) while it is read: what was read is what counts.
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::read(fd.get(), content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LocalFileError(errno, what);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  content.resize(done);
  return content;
}

}  // namespace qcal
