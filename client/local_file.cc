#include "qcal/local_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <stdexcept>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/absl_string_view.h"

namespace qcal {
namespace {

// The payload that marks a local-file error; its value is unused.
constexpr absl::string_view kLocalFilePayload = "type.qcal.dev/qcal.LocalFileError";

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

absl::StatusOr<LocalFileReader> LocalFileReader::Open(const std::string& path,
                                                      std::string_view label) {
  std::string what = absl::StrCat("cannot read ", internal::ToAbsl(label), "'", path, "'");
  // O_NONBLOCK: opening a FIFO must not wait for a writer before fstat refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return LocalFileError(errno, what);
  LocalFileReader reader(fd, std::move(what), 0);  // closes fd on every return below
  struct stat info {};
  if (::fstat(fd, &info) != 0) return LocalFileError(errno, reader.what_);
  if (!S_ISREG(info.st_mode)) {
    return MarkLocalFileError(absl::FailedPreconditionError(
        absl::StrCat(reader.what_, S_ISDIR(info.st_mode) ? ": a directory, not a regular file"
                                                         : ": not a regular file")));
  }
  reader.size_ = static_cast<int64_t>(info.st_size);
  return reader;
}

LocalFileReader::LocalFileReader(int fd, std::string what, int64_t size)
    : fd_(fd), what_(std::move(what)), size_(size) {}

LocalFileReader::LocalFileReader(LocalFileReader&& other) noexcept
    : fd_(other.fd_), what_(std::move(other.what_)), size_(other.size_) {
  other.fd_ = -1;
}

LocalFileReader::~LocalFileReader() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::string> LocalFileReader::Read(size_t limit) {
  std::string piece;
  try {
    piece.resize(limit);
  } catch (const std::bad_alloc&) {
    return MarkLocalFileError(absl::ResourceExhaustedError(
        absl::StrCat(what_, ": its ", limit, " bytes do not fit in memory")));
  } catch (const std::length_error&) {
    return MarkLocalFileError(absl::ResourceExhaustedError(
        absl::StrCat(what_, ": its ", limit, " bytes do not fit in memory")));
  }
  size_t done = 0;
  while (done < limit) {
    const ssize_t n = ::read(fd_, piece.data() + done, limit - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LocalFileError(errno, what_);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  piece.resize(done);
  return piece;
}

absl::StatusOr<std::string> ReadLocalFile(const std::string& path, std::string_view label) {
  absl::StatusOr<LocalFileReader> reader = LocalFileReader::Open(path, label);
  if (!reader.ok()) return reader.status();
  // The file may shrink (or grow) while it is read: what was read is what counts.
  return reader->Read(static_cast<size_t>(reader->size()));
}

}  // namespace qcal
