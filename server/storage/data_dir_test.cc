#include "server/storage/data_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "qcal/v1/calibration.pb.h"
#include "server/storage/model_file_name.h"
#include "server/storage/state_file.h"
#include "server/storage/testing.h"

namespace qcal::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ReadBytes;
using ::testing::StartsWith;
using testing::WriteBytes;

std::string MakeTempDir() { return testing::MakeTempDir("qcal_data_dir"); }

std::set<std::string> Files(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) out.insert(entry.path().filename());
  return out;
}

// A model with one per-channel max quantizer holding `amax`, and `onnx_bytes` bytes of "ONNX"
// (DataDir does not parse it) to make the file as large as a test needs.
ModelSnapshot Snapshot(const std::string& name, std::vector<float> amax, size_t onnx_bytes = 0) {
  ModelSnapshot snapshot{.model = name};
  QuantizerSpec spec = DefaultWeightSpec();
  spec.name = "fc._weight_quantizer";
  snapshot.quantizers.push_back({.spec = spec,
                                 .batches = 1,
                                 .elements = static_cast<int64_t>(amax.size()),
                                 .bytes = static_cast<int64_t>(4 * amax.size()),
                                 .state = MaxValues{.amax = std::move(amax)}});
  snapshot.onnx = std::string(onnx_bytes, 'x');
  return snapshot;
}

std::vector<float> AmaxOf(const ModelSnapshot& snapshot) {
  return std::get<MaxValues>(snapshot.quantizers.at(0).state).amax;
}

TEST(ModelFileNameTest, ReadablePrefixAndHashWithinTheFileNameLimit) {
  const std::string name = ModelFileName("team/resnet50");
  EXPECT_THAT(name, StartsWith("team%2Fresnet50."));
  EXPECT_EQ(name.size(), std::string("team%2Fresnet50.").size() + 32 + kModelFileSuffix.size());
  // A leading dot is escaped (no hidden files, no "." or ".."), later ones are not.
  EXPECT_THAT(ModelFileName("."), StartsWith("%2E."));
  EXPECT_THAT(ModelFileName(".."), StartsWith("%2E.."));
  EXPECT_THAT(ModelFileName("a.b"), StartsWith("a.b."));
  // 1024 bytes of 2-byte UTF-8, escaped to 6 bytes each: cut to the prefix, still unique.
  std::string long_a, long_b;
  for (int i = 0; i < 512; ++i) long_a += "\xc3\xa9";
  long_b = long_a.substr(0, 1022) + "\xc3\xa8";
  EXPECT_LE(ModelFileName(long_a).size(), 255u);
  EXPECT_EQ(ModelFileName(long_a).substr(0, 120), ModelFileName(long_b).substr(0, 120));
  EXPECT_NE(ModelFileName(long_a), ModelFileName(long_b));
  EXPECT_NE(ModelFileName("a/b"), ModelFileName("a%2Fb"));
}

TEST(DataDirTest, WritesLoadBackAndLeaveNoTemporaryFile) {
  const std::string path = MakeTempDir() + "/new";  // created by Open
  {
    absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
    ASSERT_TRUE(dir.ok()) << dir.status();
    ASSERT_TRUE((*dir)->Write(Snapshot("a/1", {1.5f, 2.5f})).ok());
    ASSERT_TRUE((*dir)->Write(Snapshot("b", {3.0f})).ok());
    ASSERT_TRUE((*dir)->Write(Snapshot("a/1", {4.0f, 1e-40f})).ok());  // replaces
    EXPECT_EQ(Files(path), (std::set<std::string>{std::string(kLockFileName), ModelFileName("a/1"),
                                                  ModelFileName("b")}));
    EXPECT_EQ((*dir)->bytes(), static_cast<int64_t>(fs::file_size((*dir)->PathOf("a/1")) +
                                                    fs::file_size((*dir)->PathOf("b"))));
  }
  absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
  ASSERT_TRUE(dir.ok()) << dir.status();
  std::vector<StoredModel> stored = (*dir)->LoadAll();
  ASSERT_EQ(stored.size(), 2u);
  std::map<std::string, std::vector<float>> amax;
  for (const StoredModel& model : stored) {
    ASSERT_TRUE(model.snapshot.ok()) << model.snapshot.status();
    amax[model.snapshot->model] = AmaxOf(*model.snapshot);
  }
  EXPECT_EQ(amax["a/1"], (std::vector<float>{4.0f, 1e-40f}));
  EXPECT_EQ(amax["b"], (std::vector<float>{3.0f}));
  // Written as format version 2.
  v1::StateFile file;
  ASSERT_TRUE(file.ParseFromString(ReadBytes((*dir)->PathOf("b"))));
  EXPECT_EQ(file.format_version(), 2u);

  ASSERT_TRUE((*dir)->Remove("a/1").ok());
  ASSERT_TRUE((*dir)->Remove("never-written").ok());
  EXPECT_FALSE(fs::exists((*dir)->PathOf("a/1")));
  EXPECT_EQ((*dir)->LoadAll().size(), 1u);
}

TEST(DataDirTest, BadFilesAreRefusedSayingWhyAndStayWhileTheOthersLoad) {
  const std::string path = MakeTempDir();
  std::map<std::string, std::string> bad;  // file -> its bytes, which must stay as they are
  {
    absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
    ASSERT_TRUE(dir.ok()) << dir.status();
    for (const char* name : {"good1", "good2", "corrupt", "truncated", "foreign", "newer"}) {
      ASSERT_TRUE((*dir)->Write(Snapshot(name, {1.0f, 2.0f, 3.0f})).ok());
    }
    std::string corrupt = ReadBytes((*dir)->PathOf("corrupt"));
    corrupt[corrupt.size() - 9] ^= 0x20;
    bad[(*dir)->PathOf("corrupt")] = corrupt;
    bad[(*dir)->PathOf("truncated")] = ReadBytes((*dir)->PathOf("truncated")).substr(0, 40);
    bad[(*dir)->PathOf("foreign")] = "\x89PNG\r\n\x1a\n not ours";
    v1::StateFile newer;
    ASSERT_TRUE(newer.ParseFromString(ReadBytes((*dir)->PathOf("newer"))));
    newer.set_format_version(3);
    bad[(*dir)->PathOf("newer")] = newer.SerializeAsString();
    // A good file under another model's name: the name inside is authoritative.
    bad[path + "/" + ModelFileName("renamed")] = ReadBytes((*dir)->PathOf("good1"));
    for (const auto& [file, bytes] : bad) WriteBytes(file, bytes);
  }
  WriteBytes(path + "/notes.txt", "not a model file");
  absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
  ASSERT_TRUE(dir.ok()) << dir.status();
  std::map<std::string, absl::Status> refused;
  std::set<std::string> loaded;
  for (const StoredModel& model : (*dir)->LoadAll()) {
    if (model.snapshot.ok()) {
      loaded.insert(model.snapshot->model);
    } else {
      refused[model.path] = model.snapshot.status();
    }
  }
  EXPECT_EQ(loaded, (std::set<std::string>{"good1", "good2"}));
  ASSERT_EQ(refused.size(), 5u);
  EXPECT_THAT(refused[(*dir)->PathOf("corrupt")].message(), HasSubstr("corrupt or truncated"));
  EXPECT_THAT(refused[(*dir)->PathOf("truncated")].message(), HasSubstr("truncated or corrupt"));
  EXPECT_THAT(refused[(*dir)->PathOf("foreign")].message(), HasSubstr("not a qcal state file"));
  EXPECT_THAT(refused[(*dir)->PathOf("newer")].message(),
              HasSubstr("format_version 3; this qcal-server reads 1 to 2"));
  EXPECT_THAT(refused[path + "/" + ModelFileName("renamed")].message(),
              HasSubstr("it holds model 'good1', whose file is " + ModelFileName("good1")));
  for (const auto& [file, bytes] : bad) EXPECT_EQ(ReadBytes(file), bytes) << file;
  EXPECT_EQ(ReadBytes(path + "/notes.txt"), "not a model file");

  // A refused file's name takes no new model, whose first write would replace the file, until
  // the operator moves the file away.
  const absl::Status taken = (*dir)->CheckFree("corrupt");
  EXPECT_EQ(taken.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(taken.message(), HasSubstr("model 'corrupt': its file " + (*dir)->PathOf("corrupt") +
                                         " was refused when the server started (the state file "
                                         "is corrupt or truncated"));
  EXPECT_THAT(taken.message(), HasSubstr("move it out of --data-dir"));
  EXPECT_EQ((*dir)->Write(Snapshot("corrupt", {9.0f})).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadBytes((*dir)->PathOf("corrupt")), bad[(*dir)->PathOf("corrupt")]);
  EXPECT_TRUE((*dir)->CheckFree("good1").ok());
  ASSERT_EQ(std::remove((*dir)->PathOf("corrupt").c_str()), 0);
  EXPECT_TRUE((*dir)->CheckFree("corrupt").ok());
  EXPECT_TRUE((*dir)->Write(Snapshot("corrupt", {9.0f})).ok());
}

TEST(DataDirTest, TemporaryFilesOfACrashAreRemovedAtOpen) {
  const std::string path = MakeTempDir();
  const std::string leftover = std::string(kTempFilePrefix) + ModelFileName("m") + ".0123";
  WriteBytes(path + "/" + leftover, "half a state file");
  absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_FALSE(fs::exists(path + "/" + leftover));
  EXPECT_TRUE((*dir)->LoadAll().empty());
}

TEST(DataDirTest, ASecondOpenOfTheSameDirIsRefusedUntilTheFirstCloses) {
  const std::string path = MakeTempDir();
  absl::StatusOr<std::unique_ptr<DataDir>> first = DataDir::Open({.path = path});
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<DataDir>> second = DataDir::Open({.path = path});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr("--data-dir " + path + " is in use by another qcal-server (pid " +
                        std::to_string(::getpid()) + ", holding " + path + "/qcal-server.lock)"));
  first->reset();
  EXPECT_TRUE(DataDir::Open({.path = path}).ok());
}

TEST(DataDirTest, APathThatIsAFileIsRefused) {
  const std::string path = MakeTempDir() + "/file";
  WriteBytes(path, "x");
  absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(dir.status().message(), HasSubstr("is not a directory"));
}

TEST(DataDirTest, TheQuotaRefusesAWriteAndKeepsThePreviousFile) {
  const std::string path = MakeTempDir();
  absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path, .max_bytes = 3000});
  ASSERT_TRUE(dir.ok()) << dir.status();
  ASSERT_TRUE((*dir)->Write(Snapshot("m", {1.0f}, 1000)).ok());
  const std::string before = ReadBytes((*dir)->PathOf("m"));
  // Replacing m counts m's new size, not old + new.
  ASSERT_TRUE((*dir)->Write(Snapshot("m", {2.0f}, 1500)).ok());
  const std::string kept = ReadBytes((*dir)->PathOf("m"));
  EXPECT_NE(kept, before);
  const absl::Status refused = (*dir)->Write(Snapshot("other", {3.0f}, 1500));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(),
              HasSubstr("model 'other': cannot write " + (*dir)->PathOf("other") + ": its "));
  // A first write has no previous file to keep.
  EXPECT_THAT(refused.message(),
              HasSubstr("more than --max-data-dir-bytes 3000; no file was written"));
  const absl::Status grown = (*dir)->Write(Snapshot("m", {4.0f}, 3000));
  EXPECT_THAT(grown.message(),
              HasSubstr("more than --max-data-dir-bytes 3000; the previous file stays"));
  EXPECT_EQ(ReadBytes((*dir)->PathOf("m")), kept);
  EXPECT_EQ(Files(path), (std::set<std::string>{std::string(kLockFileName), ModelFileName("m")}));
}

// A file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored as qcal-server ignores it) makes write(2)
// fail with EFBIG part way through the file, as a full disk fails with ENOSPC.
TEST(DataDirTest, AFailedWriteKeepsThePreviousFileAndRemovesTheTemporaryOne) {
  const std::string path = MakeTempDir();
  absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
  ASSERT_TRUE(dir.ok()) << dir.status();
  ASSERT_TRUE((*dir)->Write(Snapshot("m", {1.0f}, 100)).ok());
  const std::string before = ReadBytes((*dir)->PathOf("m"));

  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old_action), 0);
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit limit = old_limit;
  limit.rlim_cur = 64 << 10;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  const absl::Status status = (*dir)->Write(Snapshot("m", {2.0f}, 256 << 10));
  // A model's first write has no previous file to keep, and says so.
  const absl::Status first = (*dir)->Write(Snapshot("new", {2.0f}, 256 << 10));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old_limit), 0);
  ASSERT_EQ(::sigaction(SIGXFSZ, &old_action, nullptr), 0);

  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(),
              HasSubstr("model 'm': cannot write " + (*dir)->PathOf("m") + ": write of "));
  EXPECT_THAT(status.message(), HasSubstr(std::strerror(EFBIG)));
  EXPECT_THAT(status.message(), HasSubstr("the previous file stays"));
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(first.message(), HasSubstr("; no file was written"));
  EXPECT_FALSE(fs::exists((*dir)->PathOf("new")));
  EXPECT_EQ(ReadBytes((*dir)->PathOf("m")), before);
  EXPECT_EQ(Files(path), (std::set<std::string>{std::string(kLockFileName), ModelFileName("m")}));
  // The next write, with room again, succeeds.
  ASSERT_TRUE((*dir)->Write(Snapshot("m", {3.0f}, 256 << 10)).ok());
}

// The committed files of format version 1 (testdata/README.md) load under their models' file
// names, with no sessions, an unknown last use and their stored amax bit for bit.
TEST(DataDirTest, Version1FilesLoad) {
  const std::string path = MakeTempDir();
  const std::string testdata = std::string(QCAL_SOURCE_DIR) + "/server/storage/testdata/";
  fs::copy_file(testdata + "v1_mergeable.qcalstate", path + "/" + ModelFileName("v1/mergeable"));
  fs::copy_file(testdata + "v1_reference.qcalstate", path + "/" + ModelFileName("v1/reference"));
  absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::map<std::string, uint32_t> input_bits = {{"v1/mergeable", 0x4105a000u},
                                                      {"v1/reference", 0x41059f51u}};
  const std::vector<uint32_t> weight_bits = {0x3fa3c9beu, 0x3fa17affu, 0x3fb5dc6du, 0x3fb2ed7au};
  std::vector<StoredModel> stored = (*dir)->LoadAll();
  ASSERT_EQ(stored.size(), 2u);
  for (const StoredModel& model : stored) {
    ASSERT_TRUE(model.snapshot.ok()) << model.path << ": " << model.snapshot.status();
    const ModelSnapshot& snapshot = *model.snapshot;
    EXPECT_TRUE(snapshot.sessions.empty());
    EXPECT_EQ(snapshot.last_used_unix_seconds, 0);
    EXPECT_FALSE(snapshot.onnx.empty());
    ASSERT_TRUE(snapshot.amax_table.has_value());
    EXPECT_EQ(snapshot.amax_table->method, "percentile");
    auto bits = [](float value) {
      uint32_t out;
      std::memcpy(&out, &value, 4);
      return out;
    };
    const auto& input = snapshot.amax_table->quantizers.at("fc._input_quantizer").amax;
    ASSERT_EQ(input.size(), 1u);
    EXPECT_EQ(bits(input[0]), input_bits.at(snapshot.model));
    const auto& weight = snapshot.amax_table->quantizers.at("fc._weight_quantizer").amax;
    ASSERT_EQ(weight.size(), 4u);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(bits(weight[i]), weight_bits[i]) << i;
    // Written before formats existed: every spec and table entry reads as integers.
    EXPECT_EQ(snapshot.default_input.format, kernels::QuantFormat::kInt);
    EXPECT_EQ(snapshot.default_weight.format, kernels::QuantFormat::kInt);
    for (const QuantizerSnapshot& quantizer : snapshot.quantizers) {
      EXPECT_EQ(quantizer.spec.format, kernels::QuantFormat::kInt) << quantizer.spec.name;
    }
    for (const auto& [name, entry] : snapshot.amax_table->quantizers) {
      EXPECT_EQ(entry.format, kernels::QuantFormat::kInt) << name;
    }
  }
}

}  // namespace
}  // namespace qcal::server
