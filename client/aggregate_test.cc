// RecordPartial on the wire, and the session's pre-aggregation (SessionOptions::aggregate)
// against the kernels on the concatenated data, over the in-process fake server.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "client/fake_calibration_service.h"
#include "kernels/max_calibrator.h"
#include "kernels/mergeable_histogram.h"
#include "qcal/client.h"
#include "qcal/partial_state.h"

namespace qcal {
namespace {

using testing::FakeServer;

constexpr char kInput[] = "conv1._input_quantizer";
constexpr char kWeight[] = "conv1._weight_quantizer";

std::unique_ptr<Client> Connect(const FakeServer& server) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(server.address());
  EXPECT_TRUE(client.ok()) << client.status();
  return *std::move(client);
}

TensorView View(const std::vector<float>& values, const std::vector<int64_t>& shape) {
  return TensorView{DType::kFloat32, shape, std::as_bytes(std::span(values))};
}

// A model as GetModel describes it: histogram inputs of `num_bins`, per-channel (axis 0) max
// weights.
v1::ModelInfo Info(const std::string& name, v1::HistogramLayout layout, int num_bins) {
  v1::ModelInfo info;
  info.set_name(name);
  info.set_histogram_layout(layout);
  info.mutable_default_input()->set_calibrator(v1::CALIBRATOR_HISTOGRAM);
  info.mutable_default_input()->set_num_bins(num_bins);
  info.mutable_default_weight()->set_calibrator(v1::CALIBRATOR_MAX);
  info.mutable_default_weight()->set_axis(0);
  return info;
}

// n values of mixed magnitudes, with NaN, inf, zeros and one large outlier.
std::vector<float> Values(std::mt19937& rng, size_t n, float scale) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(n);
  for (float& v : values) v = normal(rng);
  values[0] = 0.0f;
  values[n / 2] = std::numeric_limits<float>::quiet_NaN();
  values[n / 3] = -std::numeric_limits<float>::infinity();
  values[n - 1] = scale * 1000.0f;
  return values;
}

kernels::MergeableState Histogram(const v1::MergeableHistogram& proto) {
  kernels::MergeableState state;
  state.exponent = proto.exponent();
  state.counts.assign(proto.counts().begin(), proto.counts().end());
  state.abs_max = proto.abs_max();
  state.zeros = proto.zeros();
  return state;
}

TEST(RecordPartialTest, GoesOutAsOneMessageBetweenWholeBatches) {
  FakeServer server;
  // 3-byte chunks: the tensor before and after the partial each take several messages.
  auto session = Connect(server)->Model("m", {.chunk_bytes = 3});
  const std::vector<float> a = {1.0f, -2.0f, 3.0f};
  const std::vector<int64_t> shape = {3};
  v1::PartialState partial;
  partial.set_batches(2);
  partial.set_elements(8);
  partial.mutable_max()->add_amax(5.0f);
  ASSERT_TRUE(session->Record(kInput, View(a, shape)).ok());
  ASSERT_TRUE(session->RecordPartial(kWeight, partial).ok());
  ASSERT_TRUE(session->Record(kInput, View(a, shape)).ok());
  ASSERT_TRUE(session->Flush().ok());

  const auto batches = server.service().batches();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].chunk_sizes.size(), 4u);  // 12 bytes in 3-byte chunks
  EXPECT_EQ(batches[1].model, "m");
  EXPECT_EQ(batches[1].quantizer, kWeight);
  ASSERT_TRUE(batches[1].partial.has_value());
  EXPECT_EQ(batches[1].partial->SerializeAsString(), partial.SerializeAsString());
  EXPECT_EQ(batches[1].header.shape_size(), 0);
  EXPECT_TRUE(batches[1].data.empty());
  EXPECT_EQ(batches[2].data, batches[0].data);
  const SessionStats stats = session->Stats();
  EXPECT_EQ(stats.applied_batches, 4);  // the partial stands for 2
  EXPECT_EQ(stats.applied_elements, 3 + 8 + 3);
  EXPECT_EQ(stats.applied_partials, 1);
}

TEST(RecordPartialTest, StateWithoutHistogramOrMaxIsRefusedBeforeSending) {
  FakeServer server;
  auto session = Connect(server)->Model("m");
  v1::PartialState partial;
  partial.set_batches(1);
  const absl::Status status = session->RecordPartial(kInput, partial);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("needs a histogram or a max"), std::string::npos) << status;
  ASSERT_TRUE(session->Flush().ok());
  EXPECT_TRUE(server.service().batches().empty());
}

// One message carries a partial state, and every server takes 4 MiB: a larger state is refused
// before sending, naming model, quantizer and size, not left to gRPC's bare message limit.
TEST(RecordPartialTest, StateLargerThanAMessageIsRefusedBeforeSending) {
  FakeServer server;
  auto session = Connect(server)->Model("m");
  const int64_t bins = 600'000;  // 600k counts of 2^60: 9 bytes each as varints, 5.4 MB
  std::vector<float> values = {std::ldexp(static_cast<float>(bins - 1), -10)};
  absl::StatusOr<v1::PartialState> partial =
      CountHistogramPartial(std::span<const float>(values), bins / 2, false);
  ASSERT_TRUE(partial.ok()) << partial.status();
  ASSERT_EQ(partial->histogram().counts_size(), bins);
  for (int64_t i = 0; i < bins; ++i) partial->mutable_histogram()->set_counts(i, uint64_t{1} << 60);
  const absl::Status status = session->RecordPartial(kInput, *partial);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("model 'm', quantizer '" + std::string(kInput) +
                                  "': the partial state is "),
            std::string::npos)
      << status;
  EXPECT_NE(status.message().find("': the partial state is 5400021 bytes, more than one Record "
                                  "message carries (4194304 bytes"),
            std::string::npos)
      << status;
  EXPECT_NE(status.message().find("its histogram has 600000 bins"), std::string::npos) << status;
  ASSERT_TRUE(session->Flush().ok());
  EXPECT_TRUE(server.service().batches().empty());
}

// Record() with aggregate counts; the partials sent add up to the kernels' state of all the data
// at once, for every send_every.
TEST(AggregateTest, HistogramStateEqualsTheKernelsOnTheConcatenatedData) {
  for (int send_every : {0, 1, 3}) {
    SCOPED_TRACE(send_every);
    FakeServer server;
    server.service().SetModelInfo(Info("m", v1::HISTOGRAM_LAYOUT_MERGEABLE, 64));
    auto session =
        Connect(server)->Model("m", {.aggregate = true, .aggregate_send_every = send_every});
    std::mt19937 rng(7 + send_every);
    std::vector<float> all;
    const int records = 7;
    for (int i = 0; i < records; ++i) {
      // Growing scales: later tensors coarsen the state.
      const std::vector<float> values = Values(rng, 100 + 13 * i, std::ldexp(1.0f, 3 * i - 6));
      const std::vector<int64_t> shape = {static_cast<int64_t>(values.size())};
      ASSERT_TRUE(session->Record(kInput, View(values, shape)).ok());
      all.insert(all.end(), values.begin(), values.end());
    }
    if (send_every == 0) {
      EXPECT_TRUE(server.service().batches().empty()) << "nothing is sent before Flush";
    }
    ASSERT_TRUE(session->Flush().ok());

    const auto batches = server.service().batches();
    ASSERT_EQ(batches.size(), static_cast<size_t>(send_every == 0 ? 1 : send_every == 1 ? 7 : 3));
    v1::PartialState merged;
    for (const auto& batch : batches) {
      ASSERT_TRUE(batch.partial.has_value());
      EXPECT_EQ(batch.quantizer, kInput);
      ASSERT_TRUE(MergePartial(merged, *batch.partial, 64).ok());
    }
    absl::StatusOr<kernels::MergeableBatch> expected =
        kernels::CountMergeable(all, {.num_bins = 64});
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(Histogram(merged.histogram()), expected->state);
    EXPECT_EQ(merged.batches(), records);
    EXPECT_EQ(merged.elements(), static_cast<int64_t>(all.size()));
    EXPECT_EQ(merged.nonfinite(), 2 * records);
    EXPECT_EQ(server.service().get_model_calls(), 1);  // the model is read once
    EXPECT_EQ(session->Stats().applied_partials, static_cast<int64_t>(batches.size()));
  }
}

TEST(AggregateTest, OtherDtypesAreDecodedAsTheServerDecodesThem) {
  FakeServer server;
  server.service().SetModelInfo(Info("m", v1::HISTOGRAM_LAYOUT_MERGEABLE, 16));
  auto session = Connect(server)->Model("m", {.aggregate = true});
  // float16 1, -2, 65504, inf, NaN, a subnormal; float64 beyond float32's range, and 1/3.
  const std::vector<uint16_t> half = {0x3c00, 0xc000, 0x7bff, 0x7c00, 0x7e00, 0x0001};
  const std::vector<double> wide = {1e300, 1.0 / 3.0, -0.0};
  const std::vector<int64_t> half_shape = {6};
  const std::vector<int64_t> wide_shape = {3};
  ASSERT_TRUE(
      session
          ->Record(kInput, TensorView{DType::kFloat16, half_shape, std::as_bytes(std::span(half))})
          .ok());
  ASSERT_TRUE(
      session
          ->Record(kInput, TensorView{DType::kFloat64, wide_shape, std::as_bytes(std::span(wide))})
          .ok());
  ASSERT_TRUE(session->Flush().ok());
  const std::vector<float> decoded = {1.0f,
                                      -2.0f,
                                      65504.0f,
                                      std::numeric_limits<float>::infinity(),
                                      std::numeric_limits<float>::quiet_NaN(),
                                      std::ldexp(1.0f, -24),
                                      std::numeric_limits<float>::infinity(),
                                      static_cast<float>(1.0 / 3.0),
                                      -0.0f};
  const auto batches = server.service().batches();
  ASSERT_EQ(batches.size(), 1u);
  absl::StatusOr<kernels::MergeableBatch> expected =
      kernels::CountMergeable(decoded, {.num_bins = 16});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(Histogram(batches[0].partial->histogram()), expected->state);
  EXPECT_EQ(batches[0].partial->nonfinite(), 3);
  EXPECT_EQ(batches[0].partial->elements(), 9);
}

TEST(AggregateTest, WeightsTakeAPerChannelMaxOnTheDeclaredAxis) {
  FakeServer server;
  server.service().SetModelInfo(Info("m", v1::HISTOGRAM_LAYOUT_MERGEABLE, 64));
  auto session = Connect(server)->Model("m", {.aggregate = true});
  std::mt19937 rng(3);
  kernels::MaxCalibrator calibrator(0);
  const std::vector<int64_t> shape = {4, 2, 3};
  for (int i = 0; i < 3; ++i) {
    const std::vector<float> values = Values(rng, 24, 1.0f + i);
    ASSERT_TRUE(session->Record(kWeight, View(values, shape)).ok());
    ASSERT_TRUE(calibrator.Collect(values, shape).ok());
  }
  // Another channel count is refused at once, and the counted state stays as it was.
  const std::vector<float> other(6, 100.0f);
  const std::vector<int64_t> other_shape = {6};
  const absl::Status status = session->Record(kWeight, View(other, other_shape));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("quantizer 'conv1._weight_quantizer'"), std::string::npos)
      << status;
  ASSERT_TRUE(session->Flush().ok());
  const auto batches = server.service().batches();
  ASSERT_EQ(batches.size(), 1u);
  const v1::MaxState& max = batches[0].partial->max();
  ASSERT_TRUE(max.has_axis());
  EXPECT_EQ(max.axis(), 0);
  EXPECT_EQ(std::vector<float>(max.amax().begin(), max.amax().end()), calibrator.amax());
  EXPECT_EQ(batches[0].partial->batches(), 3);
  EXPECT_EQ(batches[0].partial->nonfinite(), 6);
}

TEST(AggregateTest, ReferenceLayoutModelIsRefusedAndNothingIsSent) {
  FakeServer server;
  server.service().SetModelInfo(Info("m", v1::HISTOGRAM_LAYOUT_REFERENCE, 64));
  auto session = Connect(server)->Model("m", {.aggregate = true});
  const std::vector<float> values = {1.0f, 2.0f};
  const std::vector<int64_t> shape = {2};
  const absl::Status status = session->Record(kInput, View(values, shape));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("pre-aggregation needs the mergeable histogram layout"),
            std::string::npos)
      << status;
  EXPECT_NE(status.message().find("model 'm', quantizer 'conv1._input_quantizer'"),
            std::string::npos)
      << status;
  ASSERT_TRUE(session->Flush().ok());
  EXPECT_TRUE(server.service().batches().empty());
}

TEST(AggregateTest, UnknownModelIsNotFoundAtRecord) {
  FakeServer server;
  auto session = Connect(server)->Model("nope", {.aggregate = true});
  const std::vector<float> values = {1.0f};
  const std::vector<int64_t> shape = {1};
  EXPECT_EQ(session->Record(kInput, View(values, shape)).code(), absl::StatusCode::kNotFound);
}

TEST(AggregateTest, DestroyingTheSessionSendsWhatWasCounted) {
  FakeServer server;
  server.service().SetModelInfo(Info("m", v1::HISTOGRAM_LAYOUT_MERGEABLE, 64));
  const std::vector<float> values = {1.0f, 2.0f, 0.0f};
  const std::vector<int64_t> shape = {3};
  {
    auto session = Connect(server)->Model("m", {.aggregate = true});
    ASSERT_TRUE(session->Record(kInput, View(values, shape)).ok());
  }
  const auto batches = server.service().batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].partial->elements(), 3);
}

TEST(MergePartialTest, RefusesMixedKindsAndOtherLengthsLeavingTheStateUnchanged) {
  const std::vector<float> values = {1.0f, -4.0f};
  const std::vector<int64_t> shape = {2};
  absl::StatusOr<v1::PartialState> histogram = CountHistogramPartial(View(values, shape), 8, false);
  absl::StatusOr<v1::PartialState> max = CountMaxPartial(View(values, shape), std::nullopt);
  absl::StatusOr<v1::PartialState> channels = CountMaxPartial(View(values, shape), 0);
  ASSERT_TRUE(histogram.ok() && max.ok() && channels.ok());
  v1::PartialState state = *histogram;
  EXPECT_EQ(MergePartial(state, *max, 8).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state.SerializeAsString(), histogram->SerializeAsString());
  state = *max;
  EXPECT_EQ(MergePartial(state, *channels, 8).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(state.SerializeAsString(), max->SerializeAsString());
  EXPECT_EQ(CountHistogramPartial(std::span<const float>(), 8, false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The counter keeps one histogram across tensors (one pass while the exponent holds); it must
// give exactly what counting each tensor afresh and merging gives, whatever the sizes and
// maxima, including a tensor that raises the exponent, one of only zeros or NaN, a state merged
// in from elsewhere, and a Take() in between.
TEST(HistogramPartialCounterTest, EqualsCountingEachTensorAndMerging) {
  for (int seed = 0; seed < 20; ++seed) {
    std::mt19937 rng(seed);
    const int64_t num_bins = std::vector<int64_t>{1, 7, 128, 2048}[seed % 4];
    const bool skip_zeros = seed % 3 == 0;
    absl::StatusOr<HistogramPartialCounter> counter =
        HistogramPartialCounter::Create(num_bins, skip_zeros);
    ASSERT_TRUE(counter.ok()) << counter.status();
    v1::PartialState expected;
    for (int step = 0; step < 12; ++step) {
      std::vector<float> values(1 + rng() % 5000);
      const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
      std::normal_distribution<float> normal(0.0f, scale);
      for (float& v : values) v = rng() % 4 == 0 ? 0.0f : normal(rng);
      if (step == 3) std::fill(values.begin(), values.end(), 0.0f);
      if (step == 5) values[0] = std::numeric_limits<float>::quiet_NaN();
      if (step == 7) values[values.size() / 2] = 1e30f;
      absl::StatusOr<v1::PartialState> fresh =
          CountHistogramPartial(std::span<const float>(values), num_bins, skip_zeros);
      ASSERT_TRUE(fresh.ok()) << fresh.status();
      if (step == 9) {  // a state counted elsewhere (say on a GPU)
        ASSERT_TRUE(counter->Merge(*fresh).ok());
      } else {
        ASSERT_TRUE(counter->Add(std::span<const float>(values)).ok());
      }
      ASSERT_TRUE(MergePartial(expected, *fresh, num_bins).ok());
      if (step == 6) {  // a send in between: what was taken plus what follows is the whole
        v1::PartialState taken = counter->Take();
        EXPECT_EQ(taken.SerializeAsString(), expected.SerializeAsString()) << "seed " << seed;
        expected = v1::PartialState();
      }
    }
    EXPECT_EQ(counter->batches(), expected.batches());
    const v1::PartialState taken = counter->Take();
    EXPECT_EQ(taken.SerializeAsString(), expected.SerializeAsString()) << "seed " << seed;
    EXPECT_EQ(counter->Take().batches(), 0);
  }
}

TEST(HistogramPartialCounterTest, RefusesMaxStatesAndBadBinCountsKeepingItsState) {
  EXPECT_EQ(HistogramPartialCounter::Create(0, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<HistogramPartialCounter> counter = HistogramPartialCounter::Create(16, false);
  ASSERT_TRUE(counter.ok());
  const std::vector<float> values = {1.0f, -2.0f, 0.5f};
  ASSERT_TRUE(counter->Add(std::span<const float>(values)).ok());
  v1::PartialState max;
  max.set_batches(1);
  max.set_elements(1);
  max.mutable_max()->add_amax(3.0f);
  EXPECT_EQ(counter->Merge(max).code(), absl::StatusCode::kInvalidArgument);
  v1::PartialState bad = *CountHistogramPartial(std::span<const float>(values), 16, false);
  bad.mutable_histogram()->set_exponent(bad.histogram().exponent() + 1);  // not canonical
  EXPECT_EQ(counter->Merge(bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(counter->Add(std::span<const float>()).code(), absl::StatusCode::kInvalidArgument);
  const v1::PartialState taken = counter->Take();
  EXPECT_EQ(taken.SerializeAsString(),
            CountHistogramPartial(std::span<const float>(values), 16, false)->SerializeAsString());
}

}  // namespace
}  // namespace qcal
