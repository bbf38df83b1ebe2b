// Files written so that a crash leaves either the old file or the new one, whole: the bytes go to
// a temporary file in the same directory, which is fsync'd and renamed over the target, and then
// the directory is fsync'd so the rename itself survives a power loss (LevelDB and etcd do the
// same).
//
//   QCAL_RETURN_IF_ERROR(WriteFileAtomically(dir_fd, "/data", "m.qcalstate", bytes));
#ifndef QCAL_SERVER_STORAGE_ATOMIC_FILE_H_
#define QCAL_SERVER_STORAGE_ATOMIC_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace qcal::server {

// Writes `bytes` as `name` in the directory open as `dir_fd` (`dir` is its path, for messages),
// through a temporary file named kTempFilePrefix + name + a random suffix. UNAVAILABLE "cannot
// write DIR/NAME: STEP: REASON; the previous file stays" when a step up to the rename fails (a
// full disk is ENOSPC, a file-size limit EFBIG): the temporary file is removed, and the previous
// `name` stays as it was. UNAVAILABLE "wrote DIR/NAME but could not sync its directory" when
// only the last fsync fails.
absl::Status WriteFileAtomically(int dir_fd, const std::string& dir, const std::string& name,
                                 absl::string_view bytes);

// Removes `name` (a missing one is fine) and fsyncs the directory. UNAVAILABLE naming the file
// and the reason.
absl::Status RemoveFileDurably(int dir_fd, const std::string& dir, const std::string& name);

// fsync of the directory open as `dir_fd`; UNAVAILABLE naming `dir`.
absl::Status SyncDirectory(int dir_fd, const std::string& dir);

}  // namespace qcal::server

#endif  // QCAL_SERVER_STORAGE_ATOMIC_FILE_H_
