// The limits on what clients can make the server hold (issue 10, item 4): --max-models,
// --max-quantizers-per-model, --max-state-bytes (StateBudget and what each holder is charged),
// --model-ttl (ModelSweeper) and --stream-idle-seconds (StreamWatchdog). Each refusal names its
// flag and changes nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/core/calibration_core.h"
#include "server/core/metrics.h"
#include "server/core/model.h"
#include "server/core/model_registry.h"
#include "server/core/model_sweeper.h"
#include "server/core/onnx_upload.h"
#include "server/core/state_budget.h"
#include "server/core/state_load.h"
#include "server/core/stream_watchdog.h"
#include "server/storage/state_file.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

constexpr char kInput[] = "a._input_quantizer";
constexpr char kWeight[] = "w._weight_quantizer";

std::shared_ptr<Model> NewModel(ModelConfig config) {
  absl::StatusOr<std::shared_ptr<Model>> model = Model::Create(std::move(config));
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *model : nullptr;
}

absl::Status Record(Model& model, const std::string& quantizer, const std::vector<int64_t>& shape,
                    const std::vector<float>& values) {
  return model.Record(quantizer, shape, values, static_cast<int64_t>(values.size() * 4)).status();
}

QuantizerSpec SpecOf(const Model& model, const std::string& quantizer) {
  for (const QuantizerInfo& info : model.Info().quantizers) {
    if (info.spec.name == quantizer) return info.spec;
  }
  ADD_FAILURE() << "no quantizer " << quantizer;
  return {};
}

int64_t BinsOf(const Model& model, const std::string& quantizer) {
  for (const QuantizerInfo& info : model.Info().quantizers) {
    if (info.spec.name == quantizer) return info.bins;
  }
  return -1;
}

std::string ReadTestModel(const std::string& name) {
  std::ifstream in(std::string(QCAL_SOURCE_DIR) + "/server/onnx/testdata/" + name,
                   std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(StateBudgetTest, GrowingPastTheLimitIsRefusedAndHoldsWhatItHeld) {
  auto budget = std::make_unique<StateBudget>(1000);
  {
    StateBudget::Charge a(budget.get());
    ASSERT_TRUE(a.Resize(600, "a").ok());
    StateBudget::Charge b(budget.get());
    const absl::Status refused = b.Resize(500, "quantizer 'q'");
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(std::string(refused.message()),
                HasSubstr("quantizer 'q' needs 500 more bytes of model state, but the server's "
                          "models hold 600 of its --max-state-bytes 1000"));
    EXPECT_EQ(b.bytes(), 0);
    EXPECT_EQ(budget->used_bytes(), 600);
    ASSERT_TRUE(b.Resize(400, "b").ok());
    EXPECT_EQ(budget->used_bytes(), 1000);
    ASSERT_TRUE(a.Resize(100, "a").ok());  // shrinking never fails
    EXPECT_EQ(budget->used_bytes(), 500);
    StateBudget::Charge moved = std::move(b);
    EXPECT_EQ(moved.bytes(), 400);
    EXPECT_EQ(b.bytes(), 0);  // NOLINT(bugprone-use-after-move): moved-from holds nothing
    EXPECT_EQ(budget->used_bytes(), 500);
  }
  EXPECT_EQ(budget->used_bytes(), 0);
}

TEST(StateBudgetTest, ModelChargesFollowTheStateAndAreReleasedByResetAndDelete) {
  auto budget = std::make_unique<StateBudget>(int64_t{1} << 30);
  std::shared_ptr<Model> model =
      NewModel({.name = "net", .limits = {.state_budget = budget.get()}});
  const int64_t empty = kModelBytes + 3;
  EXPECT_EQ(budget->used_bytes(), empty);

  ASSERT_TRUE(Record(*model, kInput, {4}, {0.5f, 1.0f, -2.0f, 3.0f}).ok());
  const int64_t bins = BinsOf(*model, kInput);
  ASSERT_GT(bins, 2048);  // mergeable: between num_bins + 1 and 2 * num_bins
  ASSERT_LE(bins, 4096);
  const int64_t input = QuantizerStateBytes(SpecOf(*model, kInput), bins, 0);
  EXPECT_EQ(input, kQuantizerBytes + 2 * 18 + kBytesPerBin * (bins + 1));
  EXPECT_EQ(budget->used_bytes(), empty + input);

  ASSERT_TRUE(Record(*model, kWeight, {3, 2}, {1, 2, 3, 4, 5, 6}).ok());
  const int64_t weight = QuantizerStateBytes(SpecOf(*model, kWeight), 0, 3);
  EXPECT_EQ(weight, kQuantizerBytes + 2 * 19 + 4 * 3);
  EXPECT_EQ(budget->used_bytes(), empty + input + weight);

  absl::StatusOr<AmaxTableForms> table = model->ComputeAmax({.params = {.method = "max"}});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(budget->used_bytes(), empty + input + weight + AmaxTableBytes(table->table));
  EXPECT_EQ(model->charged_bytes(), budget->used_bytes());

  model->Reset();  // drops the Record-created quantizers and the table
  EXPECT_EQ(budget->used_bytes(), empty);
  model.reset();  // DeleteModel drops the registry's reference, the last one
  EXPECT_EQ(budget->used_bytes(), 0);
}

// ComputeAmax's searches copy the states they search (MaxParallelism() at a time): the copies
// are charged for the call, so concurrent calls cannot hold them past --max-state-bytes.
TEST(StateBudgetTest, ComputeAmaxChargesTheCopiesItSearches) {
  const int64_t empty = kModelBytes + 3;
  int64_t input = 0;
  {
    auto budget = std::make_unique<StateBudget>(int64_t{1} << 30);
    std::shared_ptr<Model> model =
        NewModel({.name = "net", .limits = {.state_budget = budget.get()}});
    ASSERT_TRUE(Record(*model, kInput, {4}, {0.5f, 1.0f, -2.0f, 3.0f}).ok());
    input = budget->used_bytes() - empty;
  }
  // Room for the model and its histogram, not for a copy of the histogram beside them.
  auto budget = std::make_unique<StateBudget>(empty + 2 * input - 1);
  std::shared_ptr<Model> model =
      NewModel({.name = "net", .limits = {.state_budget = budget.get()}});
  ASSERT_TRUE(Record(*model, kInput, {4}, {0.5f, 1.0f, -2.0f, 3.0f}).ok());
  ASSERT_EQ(budget->used_bytes(), empty + input);
  const absl::Status refused = model->ComputeAmax({.params = {.method = "entropy"}}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("model 'net': ComputeAmax's copies of the states it searches"));
  EXPECT_THAT(refused.message(), HasSubstr("--max-state-bytes"));
  EXPECT_EQ(budget->used_bytes(), empty + input);
  EXPECT_EQ(model->GetAmaxTable({}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(StateBudgetTest, ABatchWithoutRoomForItsGrowthIsRefusedAndChangesNothing) {
  const QuantizerSpec input = [] {
    QuantizerSpec spec = DefaultInputSpec();
    spec.name = kInput;
    return spec;
  }();
  // Room for the model and an empty quantizer, not for its histogram's worst case.
  const int64_t limit = kModelBytes + 3 + QuantizerStateBytes(input, 0, 0) + 1000;
  auto budget = std::make_unique<StateBudget>(limit);
  std::shared_ptr<Model> model =
      NewModel({.name = "net", .limits = {.state_budget = budget.get()}});
  const absl::Status refused = Record(*model, kInput, {2}, {1.0f, 2.0f});
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("model 'net': quantizer 'a._input_quantizer' needs"));
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("--max-state-bytes " + std::to_string(limit)));
  EXPECT_TRUE(model->Info().quantizers.empty());
  EXPECT_EQ(budget->used_bytes(), kModelBytes + 3);

  // A per-channel max calibrator is charged its channels: 100 fit, 1000 do not.
  ASSERT_TRUE(Record(*model, kWeight, {100}, std::vector<float>(100, 1.0f)).ok());
  EXPECT_EQ(budget->used_bytes(),
            kModelBytes + 3 + QuantizerStateBytes(SpecOf(*model, kWeight), 0, 100));
  model->Reset();
  EXPECT_EQ(Record(*model, kWeight, {1000}, std::vector<float>(1000, 1.0f)).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(model->Info().quantizers.empty());
  EXPECT_EQ(budget->used_bytes(), kModelBytes + 3);
}

TEST(StateBudgetTest, AReferenceHistogramReservesItsBinLimitThenHoldsWhatItUses) {
  const int64_t worst = QuantizerStateBytes({.name = kInput}, int64_t{1} << 20, 0);
  auto budget = std::make_unique<StateBudget>(kModelBytes + 3 + worst);
  std::shared_ptr<Model> model = NewModel({.name = "net",
                                           .histogram_layout = kernels::HistogramLayout::kReference,
                                           .limits = {.state_budget = budget.get()}});
  ASSERT_TRUE(Record(*model, kInput, {2}, {1.0f, 2.0f}).ok());
  EXPECT_EQ(BinsOf(*model, kInput), 2048);
  EXPECT_EQ(budget->used_bytes(),
            kModelBytes + 3 + QuantizerStateBytes(SpecOf(*model, kInput), 2048, 0));
  // A second quantizer cannot reserve its worst case while the first holds 2048 bins.
  EXPECT_EQ(Record(*model, "b._input_quantizer", {1}, {1.0f}).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(model->Info().quantizers.size(), 1u);
}

TEST(StateBudgetTest, AnOnnxModelIsChargedItsInMemorySizeAndRefusedWithoutRoom) {
  const std::string onnx = ReadTestModel("cnn_bn.onnx");
  ASSERT_FALSE(onnx.empty());
  auto budget = std::make_unique<StateBudget>(kModelBytes + 3 + 100);
  std::shared_ptr<Model> small =
      NewModel({.name = "net", .limits = {.state_budget = budget.get()}});
  const absl::Status refused = small->UploadOnnx(onnx, {}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("model 'net', UploadOnnx: the ONNX model needs"));
  EXPECT_FALSE(small->Info().has_onnx);
  EXPECT_EQ(budget->used_bytes(), kModelBytes + 3);

  auto large = std::make_unique<StateBudget>(int64_t{1} << 30);
  std::shared_ptr<Model> model = NewModel({.name = "net", .limits = {.state_budget = large.get()}});
  ASSERT_TRUE(model->UploadOnnx(onnx, {}).ok());
  const int64_t onnx_charge = large->used_bytes() - (kModelBytes + 3);
  onnx::ModelProto parsed;
  ASSERT_TRUE(parsed.ParseFromString(onnx));
  EXPECT_EQ(onnx_charge, static_cast<int64_t>(parsed.SpaceUsedLong()));
  EXPECT_GE(onnx_charge, static_cast<int64_t>(onnx.size()));
  // Replacing it needs room for the difference only, and holds one model's bytes.
  ASSERT_TRUE(model->UploadOnnx(onnx, {}).ok());
  EXPECT_EQ(large->used_bytes(), kModelBytes + 3 + onnx_charge);
}

// An export works on copies of the stored graph (the QDQ graph and its serialization): charged
// for the call, so concurrent exports of a large stored model cannot pass --max-state-bytes.
TEST(StateBudgetTest, ExportOnnxChargesTheCopiesItWorksOn) {
  const std::string onnx = ReadTestModel("cnn_bn.onnx");
  ASSERT_FALSE(onnx.empty());
  onnx::ModelProto parsed;
  ASSERT_TRUE(parsed.ParseFromString(onnx));
  const int64_t graph = static_cast<int64_t>(parsed.SpaceUsedLong());
  auto budget = std::make_unique<StateBudget>(int64_t{1} << 30);
  std::shared_ptr<Model> model =
      NewModel({.name = "net", .limits = {.state_budget = budget.get()}});
  ASSERT_TRUE(model->UploadOnnx(onnx, {}).ok());
  ASSERT_TRUE(Record(*model, "conv1._input_quantizer", {4}, {0.5f, 1.0f, -2.0f, 3.0f}).ok());
  ASSERT_TRUE(model->ComputeAmax({.params = {.method = "max"}}).ok());
  const absl::Status first = model->ExportOnnx(std::nullopt, QdqTarget::kTensorRT).status();
  ASSERT_TRUE(first.ok()) << first;
  // Room left for one more graph, not for the two copies an export works on.
  StateBudget::Charge others(budget.get());
  ASSERT_TRUE(others.Resize(budget->limit_bytes() - budget->used_bytes() - graph, "others").ok());
  const int64_t held = budget->used_bytes();
  const absl::Status refused = model->ExportOnnx(std::nullopt, QdqTarget::kTensorRT).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("model 'net', ExportOnnx: the copies the export works on"));
  EXPECT_EQ(budget->used_bytes(), held);
}

TEST(StateBudgetTest, UploadBytesCountWhileTheyArriveAndAreGivenBack) {
  auto budget = std::make_unique<StateBudget>(kModelBytes + 3 + 1000);
  ModelRegistry registry;
  ASSERT_TRUE(registry.Create({.name = "net", .limits = {.state_budget = budget.get()}}).ok());
  {
    OnnxUpload upload(registry, /*max_bytes=*/1 << 20, budget.get());
    ASSERT_TRUE(upload.Add({.model = "net", .data = std::string(600, 'x'), .tensor_map = {}}).ok());
    EXPECT_EQ(budget->used_bytes(), kModelBytes + 3 + 600);
    const absl::Status refused =
        upload.Add({.model = "", .data = std::string(600, 'x'), .tensor_map = {}});
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(std::string(refused.message()),
                HasSubstr("model 'net', UploadOnnx: the ONNX model received so far needs 600 more "
                          "bytes"));
  }
  EXPECT_EQ(budget->used_bytes(), kModelBytes + 3);
}

TEST(QuantizerLimitTest, CreateDeclaringTooManyIsRefused) {
  auto budget = std::make_unique<StateBudget>(int64_t{1} << 30);
  ModelConfig config{.name = "net", .limits = {.max_quantizers = 2, .state_budget = budget.get()}};
  for (const char* name : {"a._input_quantizer", "b._input_quantizer", "c._input_quantizer"}) {
    QuantizerSpec spec = DefaultInputSpec();
    spec.name = name;
    config.quantizers.push_back(spec);
  }
  const absl::Status refused = Model::Create(config).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("model 'net' would hold 3 quantizers, more than the server's "
                        "--max-quantizers-per-model 2"));
  EXPECT_EQ(budget->used_bytes(), 0);
  config.quantizers.pop_back();
  EXPECT_TRUE(Model::Create(config).ok());
}

TEST(QuantizerLimitTest, RecordAndPartialStatesCreatingOneMoreAreRefused) {
  std::shared_ptr<Model> model = NewModel({.name = "net", .limits = {.max_quantizers = 2}});
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {1}, {1.0f}).ok());
  ASSERT_TRUE(Record(*model, "b._input_quantizer", {1}, {2.0f}).ok());
  const absl::Status refused = Record(*model, "c._input_quantizer", {1}, {3.0f});
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("model 'net' with quantizer 'c._input_quantizer' would hold 3 quantizers, "
                        "more than the server's --max-quantizers-per-model 2"));
  const PartialState partial{.batches = 1,
                             .elements = 2,
                             .nonfinite = 0,
                             .state = MaxPartial{.amax = {1.0f, 2.0f}, .axis = 0}};
  EXPECT_EQ(model->RecordPartial(kWeight, partial, 16).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(model->Info().quantizers.size(), 2u);
  // The quantizers it has still take data.
  EXPECT_TRUE(Record(*model, "a._input_quantizer", {1}, {4.0f}).ok());
}

TEST(QuantizerLimitTest, AMergeOrLoadPastTheLimitIsRefusedAndChangesNothing) {
  std::shared_ptr<Model> source = NewModel({.name = "src"});
  for (const char* name : {"a._input_quantizer", "c._input_quantizer", "d._input_quantizer"}) {
    ASSERT_TRUE(Record(*source, name, {1}, {1.0f}).ok());
  }
  absl::StatusOr<ModelSnapshot> snapshot = source->Snapshot();
  ASSERT_TRUE(snapshot.ok());

  std::shared_ptr<Model> model = NewModel({.name = "net", .limits = {.max_quantizers = 3}});
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {1}, {5.0f}).ok());
  ASSERT_TRUE(Record(*model, "b._input_quantizer", {1}, {5.0f}).ok());
  const absl::Status refused = model->Merge(*snapshot);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("would hold 4 quantizers, more than the server's "
                        "--max-quantizers-per-model 3"));
  const ModelInfo info = model->Info();
  ASSERT_EQ(info.quantizers.size(), 2u);
  EXPECT_EQ(info.quantizers[0].stats.batches, 1);

  const absl::Status too_many =
      Model::FromSnapshot({.name = "loaded", .limits = {.max_quantizers = 2}}, *snapshot).status();
  EXPECT_EQ(too_many.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(too_many.message()), HasSubstr("--max-quantizers-per-model 2"));
}

TEST(ModelCountLimitTest, CreateAndInsertPastMaxModelsAreRefused) {
  ModelRegistry registry(/*max_models=*/2);
  ASSERT_TRUE(registry.Create({.name = "a"}).ok());
  ASSERT_TRUE(registry.Create({.name = "b"}).ok());
  const absl::Status refused = registry.Create({.name = "c"}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("model 'c': the server holds 2 models, its --max-models 2"));
  EXPECT_EQ(registry.Find("c").status().code(), absl::StatusCode::kNotFound);
  // Joining an existing model creates nothing.
  EXPECT_TRUE(registry.Create({.name = "a"}, /*exist_ok=*/true).ok());
  absl::StatusOr<std::shared_ptr<Model>> other = Model::Create({.name = "d"});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(registry.Insert(*other).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(registry.size(), 2);
  ASSERT_TRUE(registry.Delete("a").ok());
  EXPECT_TRUE(registry.Create({.name = "c"}).ok());
}

TEST(ModelCountLimitTest, JoiningAnExistingModelNeedsNoRoom) {
  auto budget = std::make_unique<StateBudget>(kModelBytes + 1);
  ModelRegistry registry(/*max_models=*/1);
  ASSERT_TRUE(registry.Create({.name = "a", .limits = {.state_budget = budget.get()}}).ok());
  // The server is full on both counts; a trainer joining the model it holds is not refused.
  absl::StatusOr<std::shared_ptr<Model>> joined =
      registry.Create({.name = "a", .limits = {.state_budget = budget.get()}}, /*exist_ok=*/true);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(budget->used_bytes(), kModelBytes + 1);
  EXPECT_EQ(
      registry.Create({.name = "b", .limits = {.state_budget = budget.get()}}, /*exist_ok=*/true)
          .status()
          .code(),
      absl::StatusCode::kResourceExhausted);
}

TEST(ModelSweeperTest, DeletesOnlyModelsUnusedForLongerThanTheTtl) {
  ModelRegistry registry;
  std::vector<std::string> reported;
  const absl::Time now = absl::Now();
  // An hour's ttl: the sweeper's own thread (at the real time) deletes nothing here.
  ModelSweeper sweeper(registry, absl::Hours(1), [&](const std::string& name, const absl::Status&) {
    reported.push_back(name);
  });
  for (const char* name : {"old", "recent", "found"})
    ASSERT_TRUE(registry.Create({.name = name}).ok());
  for (const std::shared_ptr<Model>& model : registry.List()) model->Touch(now - absl::Minutes(30));
  (*registry.Find("recent"))->Touch(now + absl::Minutes(20));
  ASSERT_TRUE(registry.Find("found").ok());  // a call's lookup marks it used now
  std::shared_ptr<Model> old;
  for (const std::shared_ptr<Model>& model : registry.List()) {
    if (model->name() == "old") old = model;
  }

  // 75 minutes after `old`'s last use, 55 after `recent`'s, 45 after `found`'s.
  const std::vector<std::string> deleted = sweeper.SweepOnce(now + absl::Minutes(45));
  EXPECT_EQ(deleted, std::vector<std::string>{"old"});
  EXPECT_EQ(reported, std::vector<std::string>{"old"});
  EXPECT_EQ(registry.Find("old").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(old->retired());  // never written to a data dir again
  EXPECT_EQ(registry.size(), 2);
}

// SaveState's copy is charged to --max-state-bytes while it is sent: concurrent SaveStates of a
// large model cannot hold copies past the budget.
TEST(StateBudgetTest, SaveStateChargesItsCopyUntilItIsSent) {
  Metrics metrics;
  const int64_t model_bytes = kModelBytes + 1;  // the model "m"
  {
    // Room for the model, not for twice its state beside it.
    CalibrationCore core({.max_state_bytes = 3 * model_bytes - 1}, metrics);
    ASSERT_TRUE(core.CreateModel({.name = "m"}).ok());
    ASSERT_EQ(core.state_budget().used_bytes(), model_bytes);
    const absl::Status refused = core.SaveState("m").status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
    EXPECT_THAT(refused.message(), HasSubstr("model 'm': SaveState's copy of its state"));
    EXPECT_THAT(refused.message(), HasSubstr("--max-state-bytes"));
    EXPECT_EQ(core.state_budget().used_bytes(), model_bytes);
  }
  CalibrationCore core({.max_state_bytes = 3 * model_bytes}, metrics);
  ASSERT_TRUE(core.CreateModel({.name = "m"}).ok());
  {
    absl::StatusOr<CalibrationCore::SavedState> saved = core.SaveState("m");
    ASSERT_TRUE(saved.ok()) << saved.status();
    EXPECT_EQ(core.state_budget().used_bytes(),
              model_bytes + static_cast<int64_t>(saved->file.size()));
  }
  EXPECT_EQ(core.state_budget().used_bytes(), model_bytes);
}

// The merged state of a LoadState merge, what it builds beside the model: a merge that fits
// leaves the budget holding exactly the merged model, and DeleteModel gives it all back.
TEST(StateBudgetTest, ALoadStateMergeLeavesTheMergedModelCharged) {
  auto budget = std::make_unique<StateBudget>(int64_t{1} << 30);
  const ModelConfig base{.limits = {.state_budget = budget.get()}};
  ModelRegistry registry;
  absl::StatusOr<std::shared_ptr<Model>> created =
      registry.Create({.name = "net", .limits = {.state_budget = budget.get()}});
  ASSERT_TRUE(created.ok()) << created.status();
  std::shared_ptr<Model> model = *std::move(created);
  ASSERT_TRUE(Record(*model, kInput, {4}, {0.5f, 1.0f, -2.0f, 3.0f}).ok());
  ASSERT_TRUE(Record(*model, kWeight, {3, 2}, {1, 2, 3, 4, 5, 6}).ok());
  ASSERT_TRUE(model->ComputeAmax({.params = {.method = "max"}}).ok());  // the merge drops it
  // The file: a wider range for the input (its histogram grows), a quantizer the model lacks.
  std::shared_ptr<Model> source = NewModel({.name = "src"});
  ASSERT_TRUE(Record(*source, kInput, {3}, {40.0f, -0.25f, 7.0f}).ok());
  ASSERT_TRUE(Record(*source, "b._input_quantizer", {2}, {1.0f, 2.0f}).ok());
  absl::StatusOr<ModelSnapshot> snapshot = source->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  const std::string file = EncodeStateFile(*snapshot);
  {
    StateLoad load(registry, base, /*max_bytes=*/1 << 20);
    ASSERT_TRUE(load.Add({.model = "net", .merge = true, .data = file}).ok());
    absl::StatusOr<std::shared_ptr<Model>> merged = load.Finish();
    ASSERT_TRUE(merged.ok()) << merged.status();
    EXPECT_EQ(merged->get(), model.get());
    // Only the received file is still held, until the load ends.
    EXPECT_EQ(budget->used_bytes(), model->charged_bytes() + static_cast<int64_t>(file.size()));
  }
  const ModelInfo info = model->Info();
  ASSERT_EQ(info.quantizers.size(), 3u);
  EXPECT_EQ(info.quantizers[0].spec.name, kInput);
  EXPECT_EQ(info.quantizers[0].stats.batches, 2);  // both batches
  int64_t expected = kModelBytes + 3;
  for (const QuantizerInfo& quantizer : info.quantizers) {
    expected += QuantizerStateBytes(quantizer.spec, quantizer.bins, quantizer.amax_size);
  }
  EXPECT_EQ(model->charged_bytes(), expected);
  EXPECT_EQ(budget->used_bytes(), expected);
  ASSERT_TRUE(registry.Delete("net").ok());
  model.reset();
  EXPECT_EQ(budget->used_bytes(), 0);
}

// The copies a merge works on (the file's state, the model's exported one and their sum) are
// charged while it runs: without room for them it is refused, naming them, and changes nothing;
// a merge failing later, or succeeding, gives them back.
TEST(StateBudgetTest, ALoadStateMergeWithoutRoomForItsCopiesChangesNothing) {
  auto budget = std::make_unique<StateBudget>(int64_t{1} << 30);
  std::shared_ptr<Model> model =
      NewModel({.name = "net", .limits = {.state_budget = budget.get()}});
  ASSERT_TRUE(Record(*model, kInput, {4}, {0.5f, 1.0f, -2.0f, 3.0f}).ok());
  ASSERT_TRUE(model->ComputeAmax({.params = {.method = "max"}}).ok());
  std::shared_ptr<Model> source = NewModel({.name = "src"});
  ASSERT_TRUE(Record(*source, kInput, {3}, {40.0f, -0.25f, 7.0f}).ok());
  absl::StatusOr<ModelSnapshot> snapshot = source->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  const auto& counts = std::get<kernels::MergeableState>(snapshot->quantizers[0].state).counts;
  const int64_t file_state = QuantizerSnapshotBytes(snapshot->quantizers[0]);
  EXPECT_EQ(file_state, kQuantizerBytes + 18 + 8 * static_cast<int64_t>(counts.size()));
  const int64_t have = QuantizerStateBytes(SpecOf(*model, kInput), BinsOf(*model, kInput), 0);
  const int64_t copies = 2 * (file_state + have);
  const std::string file_before = EncodeStateFile(*model->Snapshot());
  const absl::StatusOr<HistogramSnapshot> histogram_before = model->GetHistogram(kInput);
  ASSERT_TRUE(histogram_before.ok());
  const std::vector<float> amax_before = model->GetAmaxTable()->table.quantizers.at(kInput).amax;

  // Room for the snapshot's configuration checked aside (an empty model), not for the copies.
  StateBudget::Charge others(budget.get());
  ASSERT_TRUE(
      others
          .Resize(budget->limit_bytes() - budget->used_bytes() - (kModelBytes + 3) - copies + 1,
                  "others")
          .ok());
  const int64_t held = budget->used_bytes();
  const absl::Status refused = model->Merge(*snapshot);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(
      std::string(refused.message()),
      HasSubstr(absl::StrCat(
          "model 'net', LoadState merge: the copies the merge works on beside the model needs ",
          copies, " more bytes")));
  EXPECT_THAT(refused.message(), HasSubstr("--max-state-bytes"));
  EXPECT_EQ(budget->used_bytes(), held);
  EXPECT_EQ(EncodeStateFile(*model->Snapshot()), file_before);
  const absl::StatusOr<HistogramSnapshot> histogram_after = model->GetHistogram(kInput);
  ASSERT_TRUE(histogram_after.ok());
  EXPECT_EQ(histogram_after->counts, histogram_before->counts);
  EXPECT_EQ(histogram_after->abs_max, histogram_before->abs_max);
  EXPECT_EQ(model->GetAmaxTable()->table.quantizers.at(kInput).amax, amax_before);

  // Room for the copies too, not for the merged state built beside the model: refused as well.
  others.Settle(others.bytes() - 1);
  const int64_t held_more = budget->used_bytes();
  const absl::Status no_room = model->Merge(*snapshot);
  EXPECT_EQ(no_room.code(), absl::StatusCode::kResourceExhausted) << no_room;
  EXPECT_THAT(std::string(no_room.message()),
              HasSubstr("model 'net', LoadState merge: quantizer 'a._input_quantizer' needs"));
  EXPECT_EQ(budget->used_bytes(), held_more);
  EXPECT_EQ(EncodeStateFile(*model->Snapshot()), file_before);

  // A merge refused after its copies were charged (the file's state is inconsistent) gives them
  // back too.
  others.Settle(0);
  const int64_t alone = budget->used_bytes();
  ModelSnapshot other = *snapshot;
  other.quantizers[0].elements += 1;  // the histogram no longer adds up
  const absl::Status differs = model->Merge(other);
  EXPECT_EQ(differs.code(), absl::StatusCode::kInvalidArgument) << differs;
  EXPECT_EQ(budget->used_bytes(), alone);
  EXPECT_EQ(EncodeStateFile(*model->Snapshot()), file_before);

  ASSERT_TRUE(model->Merge(*snapshot).ok());
  EXPECT_EQ(budget->used_bytes(), model->charged_bytes());
  EXPECT_EQ(
      model->charged_bytes(),
      kModelBytes + 3 + QuantizerStateBytes(SpecOf(*model, kInput), BinsOf(*model, kInput), 0));
  EXPECT_FALSE(model->GetAmaxTable().ok());  // the merge dropped the stored table
}

// A LoadState holds the decoded file while it builds or merges a model from it: charged, with or
// without merge, and refused (nothing created) when the budget lacks room for it.
TEST(StateBudgetTest, LoadStateChargesTheDecodedFile) {
  std::shared_ptr<Model> source = NewModel({.name = "src"});
  ASSERT_TRUE(Record(*source, kInput, {3}, {40.0f, -0.25f, 7.0f}).ok());
  ASSERT_TRUE(Record(*source, kWeight, {3, 2}, {1, 2, 3, 4, 5, 6}).ok());
  absl::StatusOr<ModelSnapshot> snapshot = source->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  const std::string file = EncodeStateFile(*snapshot);
  const int64_t decoded = SnapshotBytes(*snapshot);
  int64_t states = 0;
  for (const QuantizerSnapshot& quantizer : snapshot->quantizers) {
    states += QuantizerSnapshotBytes(quantizer);
  }
  EXPECT_EQ(decoded, kModelBytes + 3 + states);
  for (const bool merge : {false, true}) {
    SCOPED_TRACE(merge ? "merge" : "new model");
    auto budget = std::make_unique<StateBudget>(static_cast<int64_t>(file.size()) + decoded - 1 +
                                                (merge ? kModelBytes + 3 : 0));
    ModelRegistry registry;
    if (merge) {
      ASSERT_TRUE(registry.Create({.name = "net", .limits = {.state_budget = budget.get()}}).ok());
    }
    const int64_t before = budget->used_bytes();
    {
      StateLoad load(registry, {.limits = {.state_budget = budget.get()}}, 1 << 20);
      ASSERT_TRUE(load.Add({.model = "net", .merge = merge, .data = file}).ok());
      const absl::Status refused = load.Finish().status();
      EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
      EXPECT_THAT(std::string(refused.message()),
                  HasSubstr(absl::StrCat("model 'net', LoadState", merge ? " merge" : "",
                                         ": the state file's decoded state needs ", decoded,
                                         " more bytes")));
      EXPECT_THAT(refused.message(), HasSubstr("--max-state-bytes"));
    }
    EXPECT_EQ(budget->used_bytes(), before);
    EXPECT_EQ(registry.size(), merge ? 1 : 0);
    if (merge) EXPECT_EQ((*registry.Find("net"))->Info().quantizers.size(), 0u);
  }
}

// A model restored from --data-dir counts its --model-ttl from the restart: time the server was
// down is not idle time (an hour's maintenance would otherwise delete every model of a 1 h ttl).
TEST(ModelSweeperTest, ARestoredModelCountsItsTtlFromTheRestart) {
  Metrics metrics;
  CalibrationCore core({}, metrics);
  ASSERT_TRUE(core.CreateModel({.name = "m"}).ok());
  absl::StatusOr<ModelSnapshot> snapshot = core.Models().at(0)->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_TRUE(core.DeleteModel("m").ok());
  snapshot->last_used_unix_seconds = 1000;  // 1970: long before the restart
  const int64_t before = absl::ToUnixSeconds(absl::Now());
  absl::StatusOr<std::shared_ptr<Model>> restored = core.RestoreModel(*snapshot);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_GE((*restored)->last_used_unix_seconds(), before);
}

TEST(ModelSweeperTest, TheThreadDeletesAnIdleModelAndKeepsOneInUse) {
  ModelRegistry registry;
  ASSERT_TRUE(registry.Create({.name = "idle"}).ok());
  ASSERT_TRUE(registry.Create({.name = "used"}).ok());
  ModelSweeper sweeper(registry, absl::Seconds(1), nullptr);
  // No timed assertion: poll, using "used" all along, until "idle" is gone (or a generous
  // deadline passes).
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    ASSERT_TRUE(registry.Find("used").ok());
    bool idle_left = false;
    for (const std::shared_ptr<Model>& model : registry.List())
      idle_left |= model->name() == "idle";
    if (!idle_left) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::vector<std::string> left;
  for (const std::shared_ptr<Model>& model : registry.List()) left.push_back(model->name());
  EXPECT_EQ(left, std::vector<std::string>{"used"});
}

TEST(StreamWatchdogTest, EndsAStreamWaitingToReadAndNeverABusyOne) {
  StreamWatchdog watchdog(absl::Milliseconds(50));
  absl::Notification idle_ended;
  std::atomic<bool> busy_ended{false};
  StreamWatchdog::Watch busy = watchdog.Add("busy", [&] { busy_ended = true; });
  StreamWatchdog::Watch idle = watchdog.Add("idle", [&] { idle_ended.Notify(); });
  idle.Reading();  // `busy` never reads: it is applying a batch, however long that takes
  ASSERT_TRUE(idle_ended.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_FALSE(busy_ended);
  EXPECT_EQ(watchdog.ended(), 1);
}

TEST(StreamWatchdogTest, OffAddsNothing) {
  StreamWatchdog watchdog(absl::ZeroDuration());
  StreamWatchdog::Watch watch = watchdog.Add("x", [] { ADD_FAILURE() << "ended"; });
  watch.Reading();
  EXPECT_EQ(watchdog.ended(), 0);
}

}  // namespace
}  // namespace qcal::server
