// Pre-aggregated batches (Model::RecordPartial): merged exactly, mixed with raw batches, and
// every state that could corrupt a quantizer refused without changing anything.
#include "server/core/partial_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "server/core/model.h"
#include "server/storage/state_file.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

constexpr char kIn[] = "x._input_quantizer";
constexpr char kSkip[] = "s._input_quantizer";  // declared: skip_zeros
constexpr char kWeight[] = "fc._weight_quantizer";
constexpr char kTensor[] = "t._input_quantizer";  // declared: max, per tensor

std::vector<float> Normal(int n, float sigma, unsigned seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> out(n);
  for (float& value : out) value = normal(random);
  return out;
}

std::shared_ptr<Model> NewModel(
    kernels::HistogramLayout layout = kernels::HistogramLayout::kMergeable) {
  QuantizerSpec skip{.name = kSkip};
  skip.skip_zeros = true;
  absl::StatusOr<std::shared_ptr<Model>> model =
      Model::Create({.name = "net",
                     .quantizers = {skip, {.name = kTensor, .calibrator = CalibratorKind::kMax}},
                     .histogram_layout = layout,
                     .limits = {.max_channels = 4}});
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

absl::StatusOr<BatchStats> Raw(Model& model, const std::string& quantizer,
                               const std::vector<float>& values, std::vector<int64_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(values.size())};
  return model.Record(quantizer, shape, values, static_cast<int64_t>(4 * values.size()));
}

// What a trainer sends for `values` counted at `num_bins`.
PartialState Counted(const std::vector<float>& values, int64_t batches = 1,
                     bool skip_zeros = false) {
  absl::StatusOr<kernels::MergeableBatch> batch =
      kernels::CountMergeable(values, {.num_bins = 2048, .skip_zeros = skip_zeros});
  EXPECT_TRUE(batch.ok()) << batch.status();
  return {.batches = batches,
          .elements = batch->stats.elements,
          .nonfinite = batch->stats.nonfinite,
          .state = batch->state};
}

PartialState Max(std::vector<float> amax, std::optional<int> axis, int64_t elements = 4) {
  return {.batches = 1,
          .elements = elements,
          .nonfinite = 0,
          .state = MaxPartial{.amax = std::move(amax), .axis = axis}};
}

std::string StateOf(const Model& model) {
  absl::StatusOr<ModelSnapshot> snapshot = model.Snapshot();
  EXPECT_TRUE(snapshot.ok()) << snapshot.status();
  return EncodeStateFile(*snapshot);
}

TEST(PartialStateTest, MixedRawAndPartialBatchesEqualRawAlone) {
  const std::vector<float> a = Normal(500, 1.0f, 1), b = Normal(300, 8.0f, 2);
  std::vector<float> c = Normal(200, 0.5f, 3);
  c[7] = std::nanf("");
  c[9] = 0.0f;
  auto raw = NewModel();
  auto mixed = NewModel();
  ASSERT_TRUE(Raw(*raw, kIn, a).ok());
  ASSERT_TRUE(Raw(*raw, kIn, b).ok());
  ASSERT_TRUE(Raw(*raw, kIn, c).ok());
  ASSERT_TRUE(Raw(*mixed, kIn, a).ok());
  const PartialState partial = Counted(b);
  const absl::StatusOr<BatchStats> applied = mixed->RecordPartial(kIn, partial, 123);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, (BatchStats{.batches = 1, .elements = 300, .bytes = 123, .partials = 1}));
  ASSERT_TRUE(mixed->RecordPartial(kIn, Counted(c), 45).ok());

  const HistogramSnapshot want = *raw->GetHistogram(kIn), got = *mixed->GetHistogram(kIn);
  EXPECT_EQ(got.counts, want.counts);
  EXPECT_EQ(got.edges, want.edges);
  EXPECT_EQ(got.abs_max, want.abs_max);
  EXPECT_EQ(got.total, want.total);
  const QuantizerInfo& info = mixed->Info().quantizers.back();
  EXPECT_EQ(info.stats,
            (BatchStats{.batches = 3, .elements = 1000, .nonfinite = 1, .bytes = 2000 + 123 + 45}));
  for (const char* method : {"max", "entropy", "mse", "percentile"}) {
    EXPECT_EQ(mixed->ComputeAmax({.params = {.method = method}})->table.quantizers.at(kIn).amax,
              raw->ComputeAmax({.params = {.method = method}})->table.quantizers.at(kIn).amax)
        << method;
  }
  // Per-channel maxima take the elementwise max with raw batches.
  ASSERT_TRUE(Raw(*mixed, kWeight, {1, -2, 3, 0.5}, {2, 2}).ok());
  ASSERT_TRUE(mixed->RecordPartial(kWeight, Max({2.5f, 1.0f}, 0), 16).ok());
  ASSERT_TRUE(mixed->RecordPartial(kTensor, Max({0.75f}, std::nullopt), 8).ok());
  const AmaxTable table = mixed->ComputeAmax({.params = {.method = "max"}})->table;
  EXPECT_EQ(table.quantizers.at(kWeight).amax, (std::vector<float>{2.5f, 3.0f}));
  EXPECT_EQ(table.quantizers.at(kTensor).amax, (std::vector<float>{0.75f}));
}

TEST(PartialStateTest, APartialStateCreatesANewQuantizerWithTheDefaults) {
  auto model = NewModel();
  ASSERT_TRUE(model->RecordPartial("new._input_quantizer", Counted({1.0f, 2.0f}), 10).ok());
  ASSERT_TRUE(model->RecordPartial("new._weight_quantizer", Max({1.0f, 2.0f, 3.0f}, 0), 10).ok());
  const ModelInfo info = model->Info();
  ASSERT_EQ(info.quantizers.size(), 4u);
  // In name order, before the declared s. and t. quantizers.
  EXPECT_EQ(info.quantizers[0].spec.name, "new._input_quantizer");
  EXPECT_EQ(info.quantizers[0].spec.calibrator, CalibratorKind::kHistogram);
  EXPECT_EQ(info.quantizers[1].spec.name, "new._weight_quantizer");
  EXPECT_EQ(info.quantizers[1].spec.axis, 0);
  EXPECT_EQ(info.quantizers[1].amax_size, 3);
}

struct Refusal {
  std::string quantizer;
  PartialState partial;
  absl::StatusCode code;
  std::string message;
};

TEST(PartialStateTest, EveryCorruptingStateIsRefusedAndChangesNothing) {
  const PartialState good = Counted(Normal(100, 1.0f, 4));
  const auto& histogram = std::get<kernels::MergeableState>(good.state);
  auto with = [&](auto change) {
    PartialState out = good;
    change(out, std::get<kernels::MergeableState>(out.state));
    return out;
  };
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<Refusal> refusals = {
      {kIn, with([](PartialState&, kernels::MergeableState& h) { h.exponent -= 1; }),
       absl::StatusCode::kInvalidArgument,
       "partial state: histogram: mergeable histogram: exponent"},
      {kIn, with([](PartialState&, kernels::MergeableState& h) { h.counts.push_back(1); }),
       absl::StatusCode::kInvalidArgument, "bins, should have"},
      {kIn, with([](PartialState&, kernels::MergeableState& h) { h.counts.back() = 0; }),
       absl::StatusCode::kInvalidArgument, "the last count"},
      {kIn, with([](PartialState&, kernels::MergeableState& h) { h.zeros = 1; }),
       absl::StatusCode::kInvalidArgument, "zeros 1 should be 0 beside bins"},
      {kIn, with([](PartialState&, kernels::MergeableState& h) { h.abs_max = -1.0f; }),
       absl::StatusCode::kInvalidArgument, "abs_max -1 must be finite"},
      {kIn, with([](PartialState& p, kernels::MergeableState&) { p.elements += 1; }),
       absl::StatusCode::kInvalidArgument,
       "histogram counts and zeros add up to 100, but elements - nonfinite is 101"},
      {kIn, with([](PartialState& p, kernels::MergeableState&) { p.batches = 0; }),
       absl::StatusCode::kInvalidArgument, "batches is 0; a partial state counts >= 1"},
      {kIn, with([](PartialState& p, kernels::MergeableState&) { p.nonfinite = 101; }),
       absl::StatusCode::kInvalidArgument, "nonfinite 101 is more than elements 100"},
      {kIn, with([](PartialState& p, kernels::MergeableState&) { p.elements = -1; }),
       absl::StatusCode::kInvalidArgument, "must be >= 0"},
      {kIn, Max({1.0f}, std::nullopt), absl::StatusCode::kFailedPrecondition,
       "maxima were sent, but the quantizer has a histogram calibrator"},
      {kWeight, good, absl::StatusCode::kFailedPrecondition,
       "a histogram was sent, but the quantizer has a max calibrator"},
      {kWeight, Max({1.0f, -2.0f}, 0), absl::StatusCode::kInvalidArgument, "max.amax[1] is -2"},
      {kWeight, Max({1.0f, inf}, 0), absl::StatusCode::kInvalidArgument, "max.amax[1] is inf"},
      {kWeight, Max({1.0f, 2.0f}, 1), absl::StatusCode::kInvalidArgument,
       "max has axis 1, but the quantizer has axis 0"},
      {kWeight, Max({1.0f, 2.0f}, std::nullopt), absl::StatusCode::kInvalidArgument,
       "max has no axis (per tensor), but the quantizer has axis 0"},
      {kWeight, Max({1.0f, 2.0f, 3.0f}, 0), absl::StatusCode::kInvalidArgument,
       "max holds 3 channels on axis 0 but earlier batches had 2"},
      {kWeight, Max({}, 0), absl::StatusCode::kInvalidArgument, "max holds no amax values"},
      {kWeight, Max({1, 2, 3, 4, 5}, 0), absl::StatusCode::kResourceExhausted,
       "more than the server's --max-channels 4"},
      {kTensor, Max({1.0f, 2.0f}, std::nullopt), absl::StatusCode::kInvalidArgument,
       "a per-tensor quantizer takes exactly 1"},
      {kTensor, Max({1.0f}, 0), absl::StatusCode::kInvalidArgument,
       "max has axis 0, but the quantizer has no axis (per tensor)"},
      {kSkip, Counted({0.0f, 0.0f}), absl::StatusCode::kInvalidArgument,
       "histogram zeros is 2, but the quantizer skips zeros"},
      {kIn, with([](PartialState& p, kernels::MergeableState&) {
         p.batches = std::numeric_limits<int64_t>::max();
       }),
       absl::StatusCode::kOutOfRange,
       "partial state: batches: 2 + 9223372036854775807 would overflow"},
  };
  auto model = NewModel();
  ASSERT_TRUE(Raw(*model, kIn, Normal(50, 2.0f, 5)).ok());
  ASSERT_TRUE(model->RecordPartial(kIn, good, 10).ok());
  ASSERT_TRUE(Raw(*model, kWeight, {1, 2, 3, 4}, {2, 2}).ok());
  ASSERT_TRUE(Raw(*model, kTensor, {1.0f}).ok());
  ASSERT_TRUE(Raw(*model, kSkip, {0.0f, 1.0f}).ok());
  const std::string before = StateOf(*model);
  for (const Refusal& refusal : refusals) {
    const absl::Status status =
        model->RecordPartial(refusal.quantizer, refusal.partial, 10).status();
    EXPECT_EQ(status.code(), refusal.code) << refusal.message << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(refusal.message));
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("model 'net': quantizer '" + refusal.quantizer + "': partial state"));
    EXPECT_EQ(StateOf(*model), before) << refusal.message;
  }
  (void)histogram;
  // A refused partial state for a new quantizer creates nothing.
  EXPECT_FALSE(model->RecordPartial("new._weight_quantizer", good, 10).ok());
  EXPECT_EQ(StateOf(*model), before);
}

TEST(PartialStateTest, SkipZerosTakesHistogramsWithoutTheirZeros) {
  auto model = NewModel();
  const PartialState partial = Counted({0.0f, 1.0f, 0.0f, -3.0f}, 1, /*skip_zeros=*/true);
  ASSERT_TRUE(model->RecordPartial(kSkip, partial, 10).ok());
  ASSERT_TRUE(Raw(*model, kIn, {1.0f, -3.0f}).ok());
  EXPECT_EQ(model->GetHistogram(kSkip)->counts, model->GetHistogram(kIn)->counts);
  EXPECT_EQ(model->GetHistogram(kSkip)->total, 2u);
}

TEST(PartialStateTest, TheReferenceLayoutRefusesHistograms) {
  auto model = NewModel(kernels::HistogramLayout::kReference);
  ASSERT_TRUE(Raw(*model, kIn, {1.0f, 2.0f}).ok());
  const std::string before = StateOf(*model);
  const absl::Status status = model->RecordPartial(kIn, Counted({1.0f}), 10).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("the model uses the reference histogram layout"));
  EXPECT_EQ(StateOf(*model), before);
  // Maxima still merge: the layout concerns histograms only.
  EXPECT_TRUE(model->RecordPartial(kTensor, Max({1.0f}, std::nullopt), 10).ok());
}

}  // namespace
}  // namespace qcal::server
