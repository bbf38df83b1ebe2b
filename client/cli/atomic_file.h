// Writing a file so that readers see the old content or the new, never a part: `qcal state save`
// must not leave a truncated state file behind when it fails half way (a full disk, a crash).
#ifndef QCAL_CLIENT_CLI_ATOMIC_FILE_H_
#define QCAL_CLIENT_CLI_ATOMIC_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace qcal::cli {

// Refuses a `path` that cannot be the file written: a directory (FAILED_PRECONDITION, "a
// directory, not a regular file"), a device, FIFO or socket (FAILED_PRECONDITION, "not a regular
// file ...": the write would replace it), or one whose directory does not exist (NOT_FOUND).
// Local-file errors "cannot write LABEL'PATH': REASON". Lets a command fail before it calls the
// server.
absl::Status CheckWritablePath(const std::string& path, std::string_view label = "");

// Writes `bytes` to a new temporary file in the directory of `path` (so the rename stays on one
// file system), fsyncs it, renames it over `path` and fsyncs the directory. A symbolic link is
// followed: the file it names is replaced and the link stays. On any error the
// temporary file is removed and `path` is left as it was. Local-file errors (qcal/local_file.h)
// "cannot write LABEL'PATH': REASON", the code from errno (NOT_FOUND, PERMISSION_DENIED,
// RESOURCE_EXHAUSTED for ENOSPC, ...), FAILED_PRECONDITION for a directory.
absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes,
                                 std::string_view label = "");

}  // namespace qcal::cli

#endif  // QCAL_CLIENT_CLI_ATOMIC_FILE_H_
