// WriteFileAtomically / CheckWritablePath on a scratch directory.
#include "client/cli/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "qcal/local_file.h"

namespace qcal::cli {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "qcal_atomic_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }
  // Every entry of the directory: no temporary file may be left behind.
  std::vector<std::string> Entries() {
    std::vector<std::string> names;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path dir_;
};

TEST_F(AtomicFileTest, WritesAndReplacesAFileLeavingNothingElse) {
  const std::string path = (dir_ / "m.qcalstate").string();
  const std::string bytes("state\0with a zero", 17);
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  EXPECT_EQ(Read(path), bytes);
  ASSERT_TRUE(WriteFileAtomically(path, "second").ok());
  EXPECT_EQ(Read(path), "second");
  EXPECT_EQ(Entries(), std::vector<std::string>{"m.qcalstate"});
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  // Readable by its owner (mkstemp's 0600 widened to the umask's mode).
  EXPECT_TRUE(info.st_mode & S_IRUSR);
}

TEST_F(AtomicFileTest, ADirectoryIsRefusedAndKept) {
  fs::create_directory(dir_ / "runs");
  const std::string path = (dir_ / "runs").string();
  for (const absl::Status& status : {CheckWritablePath(path), WriteFileAtomically(path, "x")}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_TRUE(IsLocalFileError(status));
    EXPECT_EQ(status.message(), "cannot write '" + path + "': a directory, not a regular file");
  }
  EXPECT_TRUE(fs::is_directory(dir_ / "runs"));
  EXPECT_EQ(Entries(), std::vector<std::string>{"runs"});
}

TEST_F(AtomicFileTest, AMissingDirectoryIsNotFound) {
  const std::string path = (dir_ / "nosuch" / "m.qcalstate").string();
  const absl::Status status = WriteFileAtomically(path, "x", "state file ");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_TRUE(IsLocalFileError(status));
  EXPECT_EQ(status.message(), "cannot write state file '" + path + "': No such file or directory");
  EXPECT_TRUE(Entries().empty());
}

TEST_F(AtomicFileTest, APathBelowAPlainFileIsRefusedAndChangesNothing) {
  std::ofstream(dir_ / "plain") << "keep";
  const std::string path = (dir_ / "plain" / "m").string();
  const absl::Status status = WriteFileAtomically(path, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(IsLocalFileError(status));
  EXPECT_EQ(Read(dir_ / "plain"), "keep");
  EXPECT_EQ(Entries(), std::vector<std::string>{"plain"});
}

// A FIFO (a device would do the same; a test must not touch /dev) is refused, not replaced by
// the rename: as root, `qcal state save m /dev/null` once turned /dev/null into a regular file.
TEST_F(AtomicFileTest, AFifoIsRefusedAndKept) {
  const std::string path = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  for (const absl::Status& status : {CheckWritablePath(path), WriteFileAtomically(path, "x")}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_TRUE(IsLocalFileError(status));
    EXPECT_EQ(status.message(), "cannot write '" + path +
                                    "': not a regular file (a device, FIFO or socket); refusing "
                                    "to replace it");
  }
  EXPECT_TRUE(fs::is_fifo(path));
  EXPECT_EQ(Entries(), std::vector<std::string>{"fifo"});
}

TEST_F(AtomicFileTest, ASymlinkIsFollowedAndKept) {
  fs::create_directory(dir_ / "runs");
  std::ofstream(dir_ / "runs" / "a.qcalstate") << "old";
  fs::create_symlink("runs/a.qcalstate", dir_ / "latest");
  ASSERT_TRUE(WriteFileAtomically((dir_ / "latest").string(), "new").ok());
  EXPECT_TRUE(fs::is_symlink(dir_ / "latest"));
  EXPECT_EQ(Read(dir_ / "runs" / "a.qcalstate"), "new");
  EXPECT_EQ(Read(dir_ / "latest"), "new");
  // A dangling link: its target is created.
  fs::create_symlink("runs/b.qcalstate", dir_ / "next");
  ASSERT_TRUE(WriteFileAtomically((dir_ / "next").string(), "b").ok());
  EXPECT_TRUE(fs::is_symlink(dir_ / "next"));
  EXPECT_EQ(Read(dir_ / "runs" / "b.qcalstate"), "b");
  EXPECT_EQ(Entries(), (std::vector<std::string>{"latest", "next", "runs"}));
}

}  // namespace
}  // namespace qcal::cli
