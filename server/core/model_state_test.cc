// Model <-> state file: a saved and loaded model gives the same amax bit for bit, and merged
// halves equal the whole data.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "server/core/model.h"
#include "server/storage/state_file.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;
using Layout = kernels::HistogramLayout;

constexpr char kIn[] = "x._input_quantizer";
constexpr char kTensorMax[] = "t._input_quantizer";  // declared: max, per tensor
constexpr char kWeight[] = "fc._weight_quantizer";   // the default: max, axis 0

std::vector<float> Normal(int n, float sigma, unsigned seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> out(n);
  for (float& value : out) value = normal(random);
  return out;
}

std::shared_ptr<Model> NewModel(Layout layout, const std::string& name = "net") {
  absl::StatusOr<std::shared_ptr<Model>> model =
      Model::Create({.name = name,
                     .quantizers = {{.name = kTensorMax, .calibrator = CalibratorKind::kMax}},
                     .histogram_layout = layout});
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

void Feed(Model& model, const std::string& quantizer, const std::vector<float>& values,
          std::vector<int64_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(values.size())};
  const absl::StatusOr<BatchStats> applied =
      model.Record(quantizer, shape, values, static_cast<int64_t>(4 * values.size()));
  ASSERT_TRUE(applied.ok()) << applied.status();
}

std::map<std::string, std::vector<float>> Amax(Model& model, const std::string& method) {
  absl::StatusOr<AmaxTableForms> table = model.ComputeAmax({.params = {.method = method}});
  EXPECT_TRUE(table.ok()) << method << ": " << table.status();
  std::map<std::string, std::vector<float>> out;
  if (!table.ok()) return out;
  for (const auto& [name, entry] : table->table.quantizers) out[name] = entry.amax;
  return out;
}

std::string ReadTestModel(const std::string& name) {
  std::ifstream in(std::string(QCAL_SOURCE_DIR) + "/server/onnx/testdata/" + name,
                   std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The state file of `model`, under the name "same" (so two models' files compare).
std::string FileOf(const Model& model) {
  absl::StatusOr<ModelSnapshot> snapshot = model.Snapshot();
  EXPECT_TRUE(snapshot.ok()) << snapshot.status();
  snapshot->model = "same";
  if (snapshot->amax_table.has_value()) snapshot->amax_table->model = "same";
  return EncodeStateFile(*snapshot);
}

std::shared_ptr<Model> Load(const std::string& file, const std::string& name) {
  absl::StatusOr<ModelSnapshot> snapshot = DecodeStateFile(file);
  EXPECT_TRUE(snapshot.ok()) << snapshot.status();
  absl::StatusOr<std::shared_ptr<Model>> model = Model::FromSnapshot({.name = name}, *snapshot);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

class ModelStateTest : public ::testing::TestWithParam<Layout> {};

TEST_P(ModelStateTest, SaveAndLoadGiveTheSameAmaxBitForBit) {
  auto model = NewModel(GetParam());
  Feed(*model, kIn, {0.0f, 0.0f});  // zeros first: held until a range exists
  Feed(*model, kIn, Normal(700, 2.0f, 3));
  Feed(*model, kIn, Normal(300, 9.0f, 4));  // grows the range (reference layout)
  Feed(*model, kTensorMax, {1.5f, -4.0f, std::nanf("")});
  Feed(*model, kWeight, Normal(12, 1.0f, 5), {3, 4});
  ASSERT_TRUE(model->UploadOnnx(ReadTestModel("cnn_bn.onnx"), {}).ok());
  const auto mse = Amax(*model, "mse");  // stored: the table travels too

  const std::string file = FileOf(*model);
  auto loaded = Load(file, "copy");
  EXPECT_EQ(FileOf(*loaded), file);
  const ModelInfo info = loaded->Info();
  EXPECT_EQ(info.histogram_layout, GetParam());
  EXPECT_TRUE(info.has_onnx);
  EXPECT_EQ(info.amax_method, "mse");
  EXPECT_EQ(info.onnx_bindings, model->Info().onnx_bindings);
  ASSERT_EQ(info.quantizers.size(), 3u);
  EXPECT_EQ(info.quantizers[0].stats,
            (BatchStats{.batches = 1, .elements = 12, .nonfinite = 0, .bytes = 48}));
  EXPECT_EQ(info.quantizers[1].stats,
            (BatchStats{.batches = 1, .elements = 3, .nonfinite = 1, .bytes = 12}));
  EXPECT_EQ(info.quantizers[2].stats,
            (BatchStats{.batches = 3, .elements = 1002, .nonfinite = 0, .bytes = 4008}));
  EXPECT_EQ(Amax(*loaded, "mse"), mse);
  for (const char* method : {"max", "entropy", "mse", "percentile"}) {
    EXPECT_EQ(Amax(*loaded, method), Amax(*model, method)) << method;
  }
  // The loaded model goes on calibrating as the original does.
  const std::vector<float> more = Normal(50, 20.0f, 6);
  Feed(*model, kIn, more);
  Feed(*loaded, kIn, more);
  EXPECT_EQ(FileOf(*loaded), FileOf(*model));
}

TEST_P(ModelStateTest, ResetAndEmptyQuantizersRoundTrip) {
  auto model = NewModel(GetParam());
  const std::string file = FileOf(*model);  // a declared quantizer without data
  auto loaded = Load(file, "copy");
  EXPECT_EQ(FileOf(*loaded), file);
  ASSERT_EQ(loaded->Info().quantizers.size(), 1u);
  loaded->Reset();
  EXPECT_EQ(loaded->Info().histogram_layout, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Layouts, ModelStateTest,
                         ::testing::Values(Layout::kMergeable, Layout::kReference));

TEST(ModelMergeTest, MergedHalvesEqualAllTheDataBitForBit) {
  const std::vector<float> a = Normal(900, 1.0f, 7), b = Normal(400, 6.0f, 8);
  auto all = NewModel(Layout::kMergeable, "all");
  auto first = NewModel(Layout::kMergeable, "first");
  auto second = NewModel(Layout::kMergeable, "second");
  Feed(*all, kIn, a);
  Feed(*all, kIn, b);
  Feed(*first, kIn, a);
  Feed(*second, kIn, b);  // the larger max arrives second: the first half is coarsened
  Feed(*all, kWeight, {1, -5, 2, 0.5}, {2, 2});
  Feed(*all, kWeight, {3, 1, -1, 4}, {2, 2});
  Feed(*first, kWeight, {1, -5, 2, 0.5}, {2, 2});
  Feed(*second, kWeight, {3, 1, -1, 4}, {2, 2});
  Feed(*second, kTensorMax, {7.0f});  // only in the file
  Feed(*all, kTensorMax, {7.0f});
  ASSERT_TRUE(first->ComputeAmax({.params = {.method = "max"}}).ok());

  absl::StatusOr<ModelSnapshot> half = second->Snapshot();
  ASSERT_TRUE(half.ok()) << half.status();
  ASSERT_TRUE(first->Merge(*half).ok());
  EXPECT_EQ(FileOf(*first), FileOf(*all));
  EXPECT_EQ(first->Info().amax_method, "");  // the stored table no longer described the state
  for (const char* method : {"max", "entropy", "mse", "percentile"}) {
    EXPECT_EQ(Amax(*first, method), Amax(*all, method)) << method;
  }
}

TEST(ModelMergeTest, ReferenceHistogramsWithEqualEdgesAddExactly) {
  auto first = NewModel(Layout::kReference, "first");
  auto second = NewModel(Layout::kReference, "second");
  // The same first batch fixes the same edges; later batches stay inside them.
  const std::vector<float> edges = {-4.0f, 1.0f};
  Feed(*first, kIn, edges);
  Feed(*second, kIn, edges);
  Feed(*first, kIn, {0.5f, 3.9f, -2.0f});
  Feed(*second, kIn, {0.5f, 0.25f});
  const HistogramSnapshot a = *first->GetHistogram(kIn), b = *second->GetHistogram(kIn);
  ASSERT_EQ(a.edges, b.edges);
  ASSERT_TRUE(first->Merge(*second->Snapshot()).ok());
  const HistogramSnapshot merged = *first->GetHistogram(kIn);
  ASSERT_EQ(merged.counts.size(), a.counts.size());
  for (size_t i = 0; i < a.counts.size(); ++i) {
    EXPECT_EQ(merged.counts[i], a.counts[i] + b.counts[i]) << i;
  }
  EXPECT_EQ(merged.edges, a.edges);
  EXPECT_EQ(merged.total, 9u);
  EXPECT_EQ(merged.abs_max, 4.0f);
}

TEST(ModelMergeTest, RefusedMergesChangeNothing) {
  auto model = NewModel(Layout::kMergeable);
  Feed(*model, kIn, Normal(100, 1.0f, 9));
  Feed(*model, kWeight, {1, 2, 3, 4}, {2, 2});
  ASSERT_TRUE(model->ComputeAmax({.params = {.method = "max"}}).ok());
  const std::string before = FileOf(*model);

  auto expect_refused = [&](const Model& other, absl::StatusCode code, const std::string& message) {
    absl::StatusOr<ModelSnapshot> snapshot = other.Snapshot();
    ASSERT_TRUE(snapshot.ok());
    const absl::Status status = model->Merge(*snapshot);
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(message));
    EXPECT_EQ(FileOf(*model), before);
  };
  auto reference = NewModel(Layout::kReference, "ref");
  expect_refused(*reference, absl::StatusCode::kFailedPrecondition,
                 "model 'net', LoadState merge: the model exists with histogram_layout mergeable, "
                 "not reference as the state file has");
  QuantizerSpec bins = DefaultInputSpec();
  bins.num_bins = 1024;
  auto other_bins =
      *Model::Create({.name = "bins",
                      .default_input = bins,
                      .quantizers = {{.name = kTensorMax, .calibrator = CalibratorKind::kMax}}});
  expect_refused(*other_bins, absl::StatusCode::kFailedPrecondition,
                 "with default_input num_bins 2048, not 1024");
  auto undeclared = *Model::Create({.name = "undeclared"});
  expect_refused(*undeclared, absl::StatusCode::kFailedPrecondition,
                 "with declared quantizer 't._input_quantizer', which the state file does not "
                 "declare");
  // Channel counts that differ: the second quantizer merges, the first does not, and neither
  // changes.
  auto channels = NewModel(Layout::kMergeable, "channels");
  Feed(*channels, kIn, {1.0f});
  Feed(*channels, kWeight, {1, 2, 3}, {3, 1});
  expect_refused(*channels, absl::StatusCode::kFailedPrecondition,
                 "quantizer 'fc._weight_quantizer': the model holds 2 amax values (channels), "
                 "the state file 3");
  // A file of the same configuration whose own state is inconsistent.
  absl::StatusOr<ModelSnapshot> bad = model->Snapshot();
  ASSERT_TRUE(bad.ok());
  bad->quantizers.back().elements += 1;  // the histogram no longer adds up
  const absl::Status status = model->Merge(*bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("values, but elements - nonfinite is"));
  EXPECT_EQ(FileOf(*model), before);
}

TEST(ModelFromSnapshotTest, InconsistentStatesAndLimitsAreRefused) {
  auto model = NewModel(Layout::kMergeable);
  Feed(*model, kIn, Normal(100, 1.0f, 10));
  Feed(*model, kWeight, {1, 2, 3, 4}, {2, 2});
  const ModelSnapshot good = *model->Snapshot();

  auto expect_refused = [](const ModelSnapshot& snapshot, ModelLimits limits, absl::StatusCode code,
                           const std::string& message) {
    const absl::Status status =
        Model::FromSnapshot({.name = "copy", .limits = limits}, snapshot).status();
    EXPECT_EQ(status.code(), code) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(message));
  };
  ModelSnapshot negative = good;
  std::get<MaxValues>(negative.quantizers[0].state).amax[1] = -1.0f;
  expect_refused(negative, {}, absl::StatusCode::kInvalidArgument, "max.amax[1] is -1");
  ModelSnapshot exponent = good;
  std::get<kernels::MergeableState>(exponent.quantizers[2].state).exponent += 1;
  expect_refused(exponent, {}, absl::StatusCode::kInvalidArgument, "exponent");
  ModelSnapshot orphan = good;
  orphan.quantizers[0].batches = 0;
  expect_refused(orphan, {}, absl::StatusCode::kInvalidArgument, "a calibrator state without");
  expect_refused(good, {.max_channels = 1}, absl::StatusCode::kResourceExhausted,
                 "--max-channels 1");
  expect_refused(good, {.max_num_bins = 1024}, absl::StatusCode::kResourceExhausted,
                 "--max-num-bins");
  ModelSnapshot twice = good;
  twice.quantizers.push_back(twice.quantizers[0]);
  expect_refused(twice, {}, absl::StatusCode::kInvalidArgument, "appears twice in the state");
  ModelSnapshot onnx = good;
  onnx.onnx = "not an onnx model";
  expect_refused(onnx, {}, absl::StatusCode::kInvalidArgument, "the state's ONNX model");
}

}  // namespace
}  // namespace qcal::server
