// Errors about files on the caller's machine (a .npy file to read, an --out to write), told apart
// from the errors of calls: no call failed, so the qcal CLI prints them without a gRPC code word
// ("error: cannot write --out 'x.onnx': No such file or directory").
//
//   absl::StatusOr<std::string> onnx = qcal::ReadLocalFile(path, "--onnx ");
//   if (!onnx.ok() && qcal::IsLocalFileError(onnx.status())) ...  // "cannot read --onnx 'p': ..."
#ifndef QCAL_CLIENT_LOCAL_FILE_H_
#define QCAL_CLIENT_LOCAL_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qcal {

// absl::ErrnoToStatus(errno_value, what) (message "WHAT: strerror", code from errno: NOT_FOUND for
// ENOENT, PERMISSION_DENIED for EACCES, ...) marked as a local-file error.
absl::Status LocalFileError(int errno_value, std::string_view what);

// `status` with the local-file mark (its code and message unchanged).
absl::Status MarkLocalFileError(absl::Status status);

// Whether `status` came from LocalFileError or MarkLocalFileError.
bool IsLocalFileError(const absl::Status& status);

// The whole content of the regular file at `path`. Local-file errors "cannot read LABEL'PATH':
// REASON" (LABEL is e.g. "--onnx ", or empty): NOT_FOUND or PERMISSION_DENIED (errno) when it
// cannot be opened or read, FAILED_PRECONDITION for a directory or anything else that is not a
// regular file, RESOURCE_EXHAUSTED when it does not fit in memory.
absl::StatusOr<std::string> ReadLocalFile(const std::string& path, std::string_view label = "");

// A regular file open for reading, closed when destroyed: ReadLocalFile's checks for a caller that
// reads a piece at a time (Client::LoadStateFile streams a state file of any size this way).
class LocalFileReader {
 public:
  // ReadLocalFile's errors for a file that cannot be opened or is not a regular file.
  static absl::StatusOr<LocalFileReader> Open(const std::string& path, std::string_view label = "");
  ~LocalFileReader();
  LocalFileReader(LocalFileReader&& other) noexcept;
  LocalFileReader& operator=(LocalFileReader&&) = delete;

  // Bytes when opened.
  int64_t size() const { return size_; }
  // Up to `limit` bytes from where the last read stopped; fewer only at the end of the file.
  // ReadLocalFile's errors for a failed read or a piece that does not fit in memory.
  absl::StatusOr<std::string> Read(size_t limit);

 private:
  LocalFileReader(int fd, std::string what, int64_t size);

  int fd_;
  // "cannot read LABEL'PATH'", the start of every error.
  std::string what_;
  int64_t size_;
};

}  // namespace qcal

#endif  // QCAL_CLIENT_LOCAL_FILE_H_
