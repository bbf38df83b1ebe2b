// --data-dir: one state file (state_file.h, format version 2) per model, named by
// ModelFileName, written atomically (atomic_file.h), under a lock that keeps other servers out
// (dir_lock.h), within an optional quota (--max-data-dir-bytes). Thread-safe; writes run one at
// a time.
//
//   QCAL_ASSIGN_OR_RETURN(auto dir, DataDir::Open({.path = "/var/lib/qcal"}));
//   for (StoredModel& stored : dir->LoadAll()) { ... }
//   QCAL_RETURN_IF_ERROR(dir->Write(snapshot));   // the file of snapshot.model
#ifndef QCAL_SERVER_STORAGE_DATA_DIR_H_
#define QCAL_SERVER_STORAGE_DATA_DIR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/storage/dir_lock.h"
#include "server/storage/model_snapshot.h"

namespace qcal::server {

struct DataDirOptions {
  // The directory; created (not its parents) when missing.
  std::string path{};
  // The most bytes its model files may take together (--max-data-dir-bytes); 0: no limit.
  int64_t max_bytes = 0;
};

// One model file found at start.
struct StoredModel {
  // Its path.
  std::string path{};
  // Its model, or why it is refused (INVALID_ARGUMENT: DecodeStateFile's reasons for a corrupt,
  // truncated, foreign or unknown-version file, or a file name that is not its model's;
  // UNAVAILABLE when it cannot be read). A refused file stays where it is.
  absl::StatusOr<ModelSnapshot> snapshot = absl::UnknownError("not read");
};

class DataDir {
 public:
  // Creates the directory when missing, takes its lock and removes the temporary files a crash
  // left (logging each). INVALID_ARGUMENT for an empty path or one that is not a directory;
  // DirLock::Acquire's errors (FAILED_PRECONDITION when another server holds it); UNAVAILABLE
  // naming the path for other I/O errors.
  static absl::StatusOr<std::unique_ptr<DataDir>> Open(DataDirOptions options);

  ~DataDir();
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;

  // Reads and decodes every model file (*.qcalstate), on a few threads, in file name order.
  // Other files are left alone. The files that do not load are marked refused (Refuse).
  std::vector<StoredModel> LoadAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Marks `path` (a StoredModel's) refused for `reason`: while it exists, Write and CheckFree
  // refuse its model name, so no new model of that name overwrites a file the operator must
  // still look at.
  void Refuse(absl::string_view path, absl::string_view reason) ABSL_LOCKS_EXCLUDED(mu_);
  // FAILED_PRECONDITION naming the file, why it was refused and what to do, while `model`'s file
  // is refused and still there; OK otherwise (a refused file since removed frees the name).
  absl::Status CheckFree(absl::string_view model) ABSL_LOCKS_EXCLUDED(mu_);

  // Writes `snapshot` (format version 2) as the file of snapshot.model, replacing the previous one
  // atomically. UNAVAILABLE naming the model, the file and the reason: WriteFileAtomically's
  // (disk full, a file-size limit, an I/O error); RESOURCE_EXHAUSTED for the quota ("... would
  // take --data-dir to N bytes, more than --max-data-dir-bytes M"); CheckFree's error. On error
  // the previous file stays, whole, and no temporary file is left.
  absl::Status Write(const ModelSnapshot& snapshot) ABSL_LOCKS_EXCLUDED(mu_);

  // Removes the file of `model` durably (none is fine). UNAVAILABLE naming the file.
  absl::Status Remove(absl::string_view model) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& path() const { return options_.path; }
  // The path of `model`'s file.
  std::string PathOf(absl::string_view model) const;
  // What the model files take now, in bytes (refused files included: they take room too).
  int64_t bytes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  DataDir(DataDirOptions options, std::unique_ptr<DirLock> lock, int fd);

  // Constant after construction.
  const DataDirOptions options_;
  const std::unique_ptr<DirLock> lock_;
  // The directory, open for openat/renameat/fsync.
  const int fd_;

  // Held through a whole write, so writes run one at a time and the quota check sees the sizes
  // the write replaces.
  mutable absl::Mutex mu_;
  // File name -> size, of every model file.
  std::map<std::string, int64_t> sizes_ ABSL_GUARDED_BY(mu_);
  // File name -> why it was refused, of the model files refused at start.
  std::map<std::string, std::string> refused_ ABSL_GUARDED_BY(mu_);

  absl::Status CheckFreeLocked(absl::string_view model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_STORAGE_DATA_DIR_H_
