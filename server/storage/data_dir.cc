#include "server/storage/data_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/base/names.h"
#include "server/base/status_util.h"
#include "server/storage/atomic_file.h"
#include "server/storage/model_file_name.h"
#include "server/storage/state_file.h"
#include "spdlog/spdlog.h"

namespace qcal::server {
namespace {

bool IsModelFile(absl::string_view name) {
  return absl::EndsWith(name, kModelFileSuffix) && !absl::StartsWith(name, ".");
}

// The regular files of the directory open as `fd`, by name, with their sizes.
absl::StatusOr<std::map<std::string, int64_t>> ListFiles(int fd, const std::string& path) {
  const int dup_fd = ::dup(fd);
  DIR* dir = dup_fd < 0 ? nullptr : ::fdopendir(dup_fd);
  if (dir == nullptr) {
    if (dup_fd >= 0) ::close(dup_fd);
    return absl::UnavailableError(
        absl::StrCat("cannot list --data-dir ", path, ": ", std::strerror(errno)));
  }
  ::rewinddir(dir);
  std::map<std::string, int64_t> out;
  while (const dirent* entry = ::readdir(dir)) {
    struct stat info {};
    if (::fstatat(fd, entry->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(info.st_mode)) {
      out.emplace(entry->d_name, static_cast<int64_t>(info.st_size));
    } else if (IsModelFile(entry->d_name)) {
      // Never followed: a link could make two names share one file, or point outside the
      // directory that the lock and the quota cover. Said, so the operator is not left guessing
      // why a model is missing.
      spdlog::warn(
          "--data-dir: skipping {}/{}: not a regular file (a symbolic link, directory or other); "
          "state files must be regular files in --data-dir itself, so its model is not loaded",
          path, entry->d_name);
    }
  }
  ::closedir(dir);
  return out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::UnavailableError(absl::StrCat("cannot read: ", std::strerror(errno)));
  }
  return bytes.str();
}

// A model file decoded, and checked to be the file of the model it holds.
absl::StatusOr<ModelSnapshot> LoadModelFile(const std::string& dir, const std::string& name) {
  QCAL_ASSIGN_OR_RETURN(std::string bytes, ReadFile(absl::StrCat(dir, "/", name)));
  QCAL_ASSIGN_OR_RETURN(ModelSnapshot snapshot, DecodeStateFile(bytes));
  if (const std::string own = ModelFileName(snapshot.model); own != name) {
    return absl::InvalidArgumentError(absl::StrCat(
        "it holds model '", ShortForMessage(snapshot.model), "', whose file is ", own,
        "; rename it to that to load it (a server writes a model only to its own file)"));
  }
  return snapshot;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDir>> DataDir::Open(DataDirOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("--data-dir is empty");
  while (options.path.size() > 1 && options.path.back() == '/') options.path.pop_back();
  if (::mkdir(options.path.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::UnavailableError(
        absl::StrCat("cannot create --data-dir ", options.path, ": ", std::strerror(errno)));
  }
  const int fd = ::open(options.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOTDIR
               ? absl::InvalidArgumentError(
                     absl::StrCat("--data-dir ", options.path, " is not a directory"))
               : absl::UnavailableError(absl::StrCat("cannot open --data-dir ", options.path, ": ",
                                                     std::strerror(errno)));
  }
  absl::StatusOr<std::unique_ptr<DirLock>> lock = DirLock::Acquire(options.path);
  if (!lock.ok()) {
    ::close(fd);
    return lock.status();
  }
  std::unique_ptr<DataDir> dir(new DataDir(std::move(options), *std::move(lock), fd));
  QCAL_ASSIGN_OR_RETURN(auto files, ListFiles(fd, dir->path()));
  absl::MutexLock hold(&dir->mu_);
  for (const auto& [name, size] : files) {
    if (absl::StartsWith(name, kTempFilePrefix)) {
      // A write that a crash interrupted: the model's previous file, if any, is whole.
      spdlog::warn("--data-dir: removing {}/{} ({} bytes), left by a write that did not finish",
                   dir->path(), name, size);
      QCAL_RETURN_IF_ERROR(RemoveFileDurably(fd, dir->path(), name));
    } else if (IsModelFile(name)) {
      dir->sizes_[name] = size;
    }
  }
  return dir;
}

DataDir::DataDir(DataDirOptions options, std::unique_ptr<DirLock> lock, int fd)
    : options_(std::move(options)), lock_(std::move(lock)), fd_(fd) {}

DataDir::~DataDir() { ::close(fd_); }

std::string DataDir::PathOf(absl::string_view model) const {
  return absl::StrCat(options_.path, "/", ModelFileName(model));
}

int64_t DataDir::bytes() const {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (const auto& [name, size] : sizes_) total += size;
  return total;
}

std::vector<StoredModel> DataDir::LoadAll() {
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, size] : sizes_) names.push_back(name);
  }
  std::vector<StoredModel> out(names.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < names.size(); i = next++) {
      out[i].path = absl::StrCat(options_.path, "/", names[i]);
      out[i].snapshot = LoadModelFile(options_.path, names[i]);
    }
  };
  // Reading and decoding are independent per file; a few threads overlap the disk and the CPU.
  const size_t threads = std::min<size_t>(
      names.size(), std::max(1u, std::min(8u, std::thread::hardware_concurrency())));
  std::vector<std::thread> pool;
  for (size_t i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();
  for (const StoredModel& stored : out) {
    if (!stored.snapshot.ok()) Refuse(stored.path, stored.snapshot.status().message());
  }
  return out;
}

void DataDir::Refuse(absl::string_view path, absl::string_view reason) {
  const size_t slash = path.rfind('/');
  absl::MutexLock lock(&mu_);
  refused_[std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1))] =
      std::string(reason);
}

absl::Status DataDir::CheckFree(absl::string_view model) {
  absl::MutexLock lock(&mu_);
  return CheckFreeLocked(model);
}

absl::Status DataDir::CheckFreeLocked(absl::string_view model) {
  const std::string name = ModelFileName(model);
  const auto it = refused_.find(name);
  if (it == refused_.end()) return absl::OkStatus();
  struct stat info;
  if (::fstatat(fd_, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
    refused_.erase(it);
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "model '", ShortForMessage(model), "': its file ", options_.path, "/", name,
      " was refused when the server started (", it->second,
      ") and is kept; move it out of --data-dir (or fix it and restart the server) to use this "
      "name again"));
}

absl::Status DataDir::Write(const ModelSnapshot& snapshot) {
  const std::string name = ModelFileName(snapshot.model);
  const std::string where = absl::StrCat("model '", ShortForMessage(snapshot.model), "'");
  const std::string bytes = EncodeStateFile(snapshot);
  const int64_t size = static_cast<int64_t>(bytes.size());
  absl::MutexLock lock(&mu_);
  QCAL_RETURN_IF_ERROR(CheckFreeLocked(snapshot.model));
  if (options_.max_bytes > 0) {
    int64_t total = size;
    for (const auto& [other, other_size] : sizes_) {
      if (other != name) total += other_size;
    }
    if (total > options_.max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          where, ": cannot write ", options_.path, "/", name, ": its ", size,
          " bytes would take --data-dir to ", total, " bytes, more than --max-data-dir-bytes ",
          options_.max_bytes,
          sizes_.contains(name) ? "; the previous file stays" : "; no file was written"));
    }
  }
  QCAL_RETURN_IF_ERROR(Annotate(WriteFileAtomically(fd_, options_.path, name, bytes), where));
  sizes_[name] = size;
  return absl::OkStatus();
}

absl::Status DataDir::Remove(absl::string_view model) {
  const std::string name = ModelFileName(model);
  absl::MutexLock lock(&mu_);
  QCAL_RETURN_IF_ERROR(RemoveFileDurably(fd_, options_.path, name));
  sizes_.erase(name);
  return absl::OkStatus();
}

}  // namespace qcal::server
