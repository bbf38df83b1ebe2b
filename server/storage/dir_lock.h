// The lock that keeps two servers out of one --data-dir: an exclusive flock(2) on
// DIR/qcal-server.lock, held while the DirLock lives (the kernel drops it when the process dies,
// kill -9 included, so no stale lock survives a crash). The file holds the holder's pid, for the
// message a second server prints.
//
//   QCAL_ASSIGN_OR_RETURN(std::unique_ptr<DirLock> lock, DirLock::Acquire("/data"));
#ifndef QCAL_SERVER_STORAGE_DIR_LOCK_H_
#define QCAL_SERVER_STORAGE_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qcal::server {

inline constexpr absl::string_view kLockFileName = "qcal-server.lock";

class DirLock {
 public:
  // FAILED_PRECONDITION "--data-dir DIR is in use by another qcal-server (pid N, holding
  // DIR/qcal-server.lock)" when another process (or another DirLock of this one) holds it;
  // UNAVAILABLE naming the file when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<DirLock>> Acquire(const std::string& dir);

  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  const int fd_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_STORAGE_DIR_LOCK_H_
