// Models through a data dir: commits write exactly when the model changed, a restart restores
// every model with the same amax bit for bit, deleted models stay deleted, and files of format
// version 1 restore with the amax they were saved with.
#include "server/core/disk_durability.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "qcal/v1/calibration.pb.h"
#include "server/core/calibration_core.h"
#include "server/core/metrics.h"
#include "server/storage/model_file_name.h"
#include "server/storage/testing.h"

namespace qcal::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ReadBytes;

std::string MakeTempDir() { return testing::MakeTempDir("qcal_durability"); }

std::vector<uint32_t> Bits(const std::vector<float>& values) {
  std::vector<uint32_t> out(values.size());
  std::memcpy(out.data(), values.data(), 4 * values.size());
  return out;
}

// A server's core over a data dir, as QcalServer wires it.
struct Server {
  explicit Server(const std::string& path) {
    absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
    EXPECT_TRUE(dir.ok()) << dir.status();
    durability = std::make_unique<DiskDurability>(*std::move(dir));
    core = std::make_unique<CalibrationCore>(CoreOptions{.durability = durability.get()}, metrics);
    restored = durability->Restore(*core);
  }
  std::shared_ptr<Model> Find(const std::string& name) {
    for (const std::shared_ptr<Model>& model : core->Models()) {
      if (model->name() == name) return model;
    }
    return nullptr;
  }
  Metrics metrics;
  std::unique_ptr<DiskDurability> durability;
  std::unique_ptr<CalibrationCore> core;
  DiskDurability::RestoreSummary restored;
};

void Feed(Model& model, const std::string& quantizer, float scale, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> values(n);
  for (int64_t i = 0; i < n; ++i) values[i] = scale * std::sin(0.1f * static_cast<float>(i));
  ASSERT_TRUE(model.Record(quantizer, shape, values, 4 * n).ok());
}

std::map<std::string, std::vector<uint32_t>> AmaxBits(CalibrationCore& core,
                                                      const std::string& model,
                                                      const MethodParams& params) {
  absl::StatusOr<AmaxTableForms> table = core.ComputeAmax(model, {.params = params});
  EXPECT_TRUE(table.ok()) << table.status();
  std::map<std::string, std::vector<uint32_t>> out;
  if (!table.ok()) return out;
  for (const auto& [name, entry] : table->table.quantizers) out[name] = Bits(entry.amax);
  return out;
}

TEST(DiskDurabilityTest, CommitWritesExactlyWhenTheModelChanged) {
  Server server(MakeTempDir());
  ASSERT_TRUE(server.core->CreateModel({.name = "m"}).ok());
  std::shared_ptr<Model> model = server.Find("m");
  const std::string path = server.durability->dir().PathOf("m");
  auto commit = [&] {
    absl::StatusOr<bool> wrote = server.durability->CommitChanged(*model);
    EXPECT_TRUE(wrote.ok()) << wrote.status();
    return wrote.value_or(false);
  };
  // CreateModel wrote the new model before it returned.
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(commit());
  Feed(*model, "fc._input_quantizer", 2.0f, {64});
  EXPECT_TRUE(commit());
  EXPECT_FALSE(commit());
  ASSERT_TRUE(server.core->ComputeAmax("m", {.params = {.method = "max"}}).ok());
  EXPECT_TRUE(commit());
  // A refused batch changes nothing, so nothing is written.
  EXPECT_FALSE(model->Record("fc._weight_quantizer", std::vector<int64_t>{}, {}, 0).ok());
  EXPECT_FALSE(commit());
  // ResetModel wrote the reset model before it returned.
  Feed(*model, "fc._input_quantizer", 2.0f, {64});
  ASSERT_TRUE(server.core->ResetModel("m").ok());
  EXPECT_FALSE(commit());
  EXPECT_TRUE(server.core->Commit("m").ok());
  EXPECT_EQ(server.core->Commit("nosuch").status().code(), absl::StatusCode::kNotFound);
}

TEST(DiskDurabilityTest, ARestartRestoresEveryModelBitForBit) {
  const std::string path = MakeTempDir();
  std::map<std::string, std::map<std::string, std::vector<uint32_t>>> before;
  const MethodParams mse{.method = "mse"};
  {
    Server server(path);
    for (const auto layout :
         {kernels::HistogramLayout::kMergeable, kernels::HistogramLayout::kReference}) {
      const std::string name = std::string("net/") + std::string(HistogramLayoutName(layout));
      ASSERT_TRUE(server.core->CreateModel({.name = name, .histogram_layout = layout}).ok());
      std::shared_ptr<Model> model = server.Find(name);
      for (int b = 0; b < 3; ++b) {
        Feed(*model, "conv._input_quantizer", 1.0f + b, {4, 100});
        Feed(*model, "conv._weight_quantizer", 0.5f + b, {8, 9});
      }
      before[name] = AmaxBits(*server.core, name, mse);
    }
    const DiskDurability::CommitSummary summary =
        server.durability->CommitAll(server.core->Models());
    EXPECT_EQ(summary.written.size(), 2u);
    EXPECT_TRUE(summary.failed.empty());
  }
  Server server(path);
  EXPECT_EQ(server.restored.restored, 2);
  EXPECT_EQ(server.restored.refused, 0);
  // Restored models count as written: nothing to write until they change.
  EXPECT_TRUE(server.durability->CommitAll(server.core->Models()).written.empty());
  for (const auto& [name, amax] : before) {
    // The stored table came back, and the state computes it again.
    absl::StatusOr<AmaxTableForms> stored = server.core->GetAmaxTable(name);
    ASSERT_TRUE(stored.ok()) << stored.status();
    for (const auto& [quantizer, entry] : stored->table.quantizers) {
      EXPECT_EQ(Bits(entry.amax), amax.at(quantizer)) << name << " " << quantizer;
    }
    EXPECT_EQ(AmaxBits(*server.core, name, mse), amax) << name;
  }
  // ComputeAmax stored a table: a change.
  EXPECT_EQ(server.durability->CommitAll(server.core->Models()).written.size(), 2u);
}

TEST(DiskDurabilityTest, ADeletedModelLosesItsFileAndIsNeverWrittenBack) {
  const std::string path = MakeTempDir();
  Server server(path);
  ASSERT_TRUE(server.core->CreateModel({.name = "gone"}).ok());
  std::shared_ptr<Model> held = server.Find("gone");  // as the committer would hold it
  ASSERT_TRUE(server.core->Commit("gone").ok());
  ASSERT_TRUE(fs::exists(server.durability->dir().PathOf("gone")));
  ASSERT_TRUE(server.core->DeleteModel("gone").ok());
  EXPECT_FALSE(fs::exists(server.durability->dir().PathOf("gone")));
  Feed(*held, "fc._input_quantizer", 1.0f, {8});
  EXPECT_TRUE(server.durability->CommitAll({held}).written.empty());
  EXPECT_FALSE(fs::exists(server.durability->dir().PathOf("gone")));
}

TEST(DiskDurabilityTest, AFileTheCoreRefusesIsLoggedAndLeftWhileOthersLoad) {
  const std::string path = MakeTempDir();
  {
    Server server(path);
    ASSERT_TRUE(server.core->CreateModel({.name = "ok"}).ok());
    ASSERT_TRUE(server.core->CreateModel({.name = "big"}).ok());
    Feed(*server.Find("big"), "fc._weight_quantizer", 1.0f, {300, 2});  // 300 channels
    EXPECT_EQ(server.durability->CommitAll(server.core->Models()).written,
              std::vector<std::string>{"big"});
  }
  const std::string big = ReadBytes(path + "/" + ModelFileName("big"));
  absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path});
  ASSERT_TRUE(dir.ok());
  DiskDurability durability(*std::move(dir));
  Metrics metrics;
  // A server restarted with a smaller --max-channels refuses the model with 300 channels.
  CalibrationCore core({.limits = {.max_channels = 100}, .durability = &durability}, metrics);
  const DiskDurability::RestoreSummary restored = durability.Restore(core);
  EXPECT_EQ(restored.restored, 1);
  EXPECT_EQ(restored.refused, 1);
  EXPECT_TRUE(core.GetModel("ok").ok());
  EXPECT_EQ(core.GetModel("big").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadBytes(path + "/" + ModelFileName("big")), big);
}

// A crash right after CreateModel or ResetModel returned keeps what they did: clients resending
// their batches after a restart must find the model they created, and not the data they reset.
TEST(DiskDurabilityTest, CreateAndResetAreDurableWhenTheyReturn) {
  const std::string path = MakeTempDir();
  {
    Server server(path);
    ASSERT_TRUE(server.core->CreateModel({.name = "created"}).ok());
    ASSERT_TRUE(server.core->CreateModel({.name = "reset"}).ok());
    Feed(*server.Find("reset"), "fc._input_quantizer", 1.0f, {64});
    ASSERT_TRUE(server.core->Commit("reset").ok());
    ASSERT_TRUE(server.core->ResetModel("reset").ok());
    // No commit: the server is gone as after kill -9.
  }
  Server server(path);
  EXPECT_EQ(server.restored.restored, 2);
  EXPECT_TRUE(server.core->GetModel("created").ok());
  absl::StatusOr<ModelInfo> reset = server.core->GetModel("reset");
  ASSERT_TRUE(reset.ok()) << reset.status();
  EXPECT_TRUE(reset->quantizers.empty());
}

// A new model whose first write fails is not created: nothing in memory, no file, no name taken.
TEST(DiskDurabilityTest, ACreationWhoseFileCannotBeWrittenIsRefusedAndLeavesNothing) {
  const std::string path = MakeTempDir();
  absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open({.path = path, .max_bytes = 10});
  ASSERT_TRUE(dir.ok()) << dir.status();
  DiskDurability durability(*std::move(dir));
  Metrics metrics;
  CalibrationCore core({.durability = &durability}, metrics);
  const absl::Status refused = core.CreateModel({.name = "m"}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("model 'm' was not created"));
  EXPECT_THAT(refused.message(), HasSubstr("--max-data-dir-bytes 10"));
  EXPECT_EQ(core.GetModel("m").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(core.ListModels().empty());
  EXPECT_FALSE(fs::exists(durability.dir().PathOf("m")));
}

// testdata/README.md: the files of format version 1 restore with the amax they were saved with,
// stored and computed again.
TEST(DiskDurabilityTest, Version1FilesRestoreWithTheirAmax) {
  const std::string path = MakeTempDir();
  const std::string testdata = std::string(QCAL_SOURCE_DIR) + "/server/storage/testdata/";
  fs::copy_file(testdata + "v1_mergeable.qcalstate", path + "/" + ModelFileName("v1/mergeable"));
  fs::copy_file(testdata + "v1_reference.qcalstate", path + "/" + ModelFileName("v1/reference"));
  Server server(path);
  ASSERT_EQ(server.restored.restored, 2);
  const std::vector<uint32_t> weight = {0x3fa3c9beu, 0x3fa17affu, 0x3fb5dc6du, 0x3fb2ed7au};
  const std::map<std::string, std::map<std::string, std::vector<uint32_t>>> want = {
      {"v1/mergeable", {{"fc._input_quantizer", {0x4105a000u}}, {"fc._weight_quantizer", weight}}},
      {"v1/reference", {{"fc._input_quantizer", {0x41059f51u}}, {"fc._weight_quantizer", weight}}}};
  for (const auto& [name, amax] : want) {
    absl::StatusOr<AmaxTableForms> stored = server.core->GetAmaxTable(name);
    ASSERT_TRUE(stored.ok()) << stored.status();
    std::map<std::string, std::vector<uint32_t>> stored_bits;
    for (const auto& [quantizer, entry] : stored->table.quantizers) {
      stored_bits[quantizer] = Bits(entry.amax);
    }
    EXPECT_EQ(stored_bits, amax) << name;
    EXPECT_EQ(AmaxBits(*server.core, name, {.method = "percentile", .percentile = 99.9}), amax)
        << name;
    absl::StatusOr<ModelInfo> info = server.core->GetModel(name);
    ASSERT_TRUE(info.ok());
    EXPECT_TRUE(info->has_onnx);
  }
  // Written again, a restored version 1 model becomes a version 2 file.
  ASSERT_TRUE(server.core->ResetModel("v1/mergeable").ok());
  ASSERT_TRUE(server.core->Commit("v1/mergeable").ok());
  v1::StateFile file;
  ASSERT_TRUE(file.ParseFromString(ReadBytes(path + "/" + ModelFileName("v1/mergeable"))));
  EXPECT_EQ(file.format_version(), 2u);
}

}  // namespace
}  // namespace qcal::server
