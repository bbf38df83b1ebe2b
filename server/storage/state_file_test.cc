#include "server/storage/state_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/histogram.h"
#include "kernels/mergeable_histogram.h"
#include "qcal/v1/calibration.pb.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

std::vector<float> Normal(int n, float sigma, unsigned seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> out(n);
  for (float& value : out) value = normal(random);
  return out;
}

QuantizerSpec Spec(const std::string& name, CalibratorKind kind, std::optional<int> axis,
                   kernels::HistogramLayout layout) {
  QuantizerSpec spec{.name = name, .axis = axis, .calibrator = kind};
  spec.layout = layout;
  return spec;
}

// One histogram quantizer in `layout`, a per-tensor and a per-channel max quantizer, an amax
// table and a tensor map, all with awkward float bits (subnormals, values at bin edges).
ModelSnapshot Sample(kernels::HistogramLayout layout) {
  ModelSnapshot snapshot{.model = "net", .layout = layout};
  snapshot.default_input.layout = layout;
  snapshot.default_weight = DefaultWeightSpec();
  snapshot.default_weight.layout = layout;
  std::vector<float> values = Normal(500, 3.0f, 1);
  values.push_back(1e-40f);  // subnormal
  values.push_back(0.0f);

  QuantizerSnapshot histogram{
      .spec = Spec("x._input_quantizer", CalibratorKind::kHistogram, std::nullopt, layout),
      .declared = true,
      .batches = 1,
      .elements = static_cast<int64_t>(values.size()),
      .nonfinite = 0,
      .bytes = static_cast<int64_t>(4 * values.size())};
  if (layout == kernels::HistogramLayout::kMergeable) {
    absl::StatusOr<kernels::MergeableBatch> batch = kernels::CountMergeable(values, {});
    EXPECT_TRUE(batch.ok()) << batch.status();
    histogram.state = batch->state;
  } else {
    kernels::Histogram reference{kernels::Histogram::Options()};
    EXPECT_TRUE(reference.Collect(values).ok());
    histogram.state = *reference.ExportReference();
  }
  snapshot.quantizers.push_back(histogram);
  snapshot.quantizers.push_back(
      {.spec = Spec("a._weight_quantizer", CalibratorKind::kMax, std::nullopt, layout),
       .batches = 2,
       .elements = 8,
       .nonfinite = 1,
       .bytes = 32,
       .state = MaxValues{.amax = {1.17549435e-38f}}});
  snapshot.quantizers.push_back(
      {.spec = Spec("b._weight_quantizer", CalibratorKind::kMax, 0, layout),
       .batches = 1,
       .elements = 6,
       .bytes = 24,
       .state = MaxValues{.amax = {0.0f, 3.4028235e38f, 0.1f}}});
  snapshot.tensor_map = {{"x._input_quantizer", "input"}};
  snapshot.amax_table = AmaxTable{.model = "net",
                                  .method = "mse",
                                  .quantizers = {{"x._input_quantizer",
                                                  {.name = "x._input_quantizer",
                                                   .amax = {2.5f},
                                                   .method = "mse",
                                                   .batches = 1,
                                                   .elements = 502}}}};
  return snapshot;
}

class StateFileTest : public ::testing::TestWithParam<kernels::HistogramLayout> {};

TEST_P(StateFileTest, RoundTripIsBitExact) {
  const ModelSnapshot snapshot = Sample(GetParam());
  const std::string bytes = EncodeStateFile(snapshot);
  ASSERT_EQ(bytes.substr(0, 19), std::string("\x0a\x11qcal.v1.StateFile"));
  const absl::StatusOr<ModelSnapshot> back = DecodeStateFile(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(EncodeStateFile(*back), bytes);
  EXPECT_EQ(back->layout, GetParam());
  ASSERT_EQ(back->quantizers.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back->quantizers[i].spec, snapshot.quantizers[i].spec);
    EXPECT_EQ(back->quantizers[i].state, snapshot.quantizers[i].state);
    EXPECT_EQ(back->quantizers[i].declared, snapshot.quantizers[i].declared);
    EXPECT_EQ(back->quantizers[i].batches, snapshot.quantizers[i].batches);
    EXPECT_EQ(back->quantizers[i].nonfinite, snapshot.quantizers[i].nonfinite);
    EXPECT_EQ(back->quantizers[i].bytes, snapshot.quantizers[i].bytes);
  }
  // Float bits survive: the smallest normal, FLT_MAX, a subnormal-holding histogram.
  EXPECT_EQ(std::get<MaxValues>(back->quantizers[1].state).amax[0], 1.17549435e-38f);
  EXPECT_EQ(std::get<MaxValues>(back->quantizers[2].state).amax[1], 3.4028235e38f);
  EXPECT_EQ(back->tensor_map, snapshot.tensor_map);
  ASSERT_TRUE(back->amax_table.has_value());
  EXPECT_EQ(back->amax_table->quantizers.at("x._input_quantizer").amax[0], 2.5f);
}

INSTANTIATE_TEST_SUITE_P(Layouts, StateFileTest,
                         ::testing::Values(kernels::HistogramLayout::kMergeable,
                                           kernels::HistogramLayout::kReference));

void ExpectRefused(const std::string& bytes, const std::string& message) {
  const absl::StatusOr<ModelSnapshot> decoded = DecodeStateFile(bytes);
  ASSERT_FALSE(decoded.ok()) << "accepted: " << message;
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(decoded.status().message()), HasSubstr(message));
}

TEST(StateFileCorruptionTest, EachCorruptionIsRefusedSayingWhat) {
  const std::string good = EncodeStateFile(Sample(kernels::HistogramLayout::kMergeable));
  // Any flipped byte past the magic: the CRC (or the parse) catches it.
  for (size_t at : {size_t{25}, good.size() / 2, good.size() - 5, good.size() - 1}) {
    std::string flipped = good;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    ExpectRefused(flipped, "the state file is");
  }
  for (size_t keep : {size_t{30}, good.size() / 2, good.size() - 1}) {
    ExpectRefused(good.substr(0, keep), "the state file is");
  }
  ExpectRefused("\x89PNG\r\n\x1a\n and then some", "not a qcal state file");
  ExpectRefused("", "not a qcal state file");

  v1::StateFile file;
  ASSERT_TRUE(file.ParseFromString(good));
  EXPECT_EQ(file.format_version(), 2u);
  v1::StateFile newer = file;
  newer.set_format_version(3);
  ExpectRefused(newer.SerializeAsString(),
                "format_version 3; this qcal-server reads 1 to 2 (the file "
                "is newer: upgrade qcal-server)");
  v1::StateFile zero = file;
  zero.set_format_version(0);
  ExpectRefused(zero.SerializeAsString(), "format_version 0; this qcal-server reads 1 to 2");
  v1::StateFile magic = file;
  magic.set_magic("qcal.v2.StateFile");
  ExpectRefused(magic.SerializeAsString(), "its magic is 'qcal.v2.StateFile', not");
  v1::StateFile malformed = file;
  malformed.set_model_state("\xff\xff\xff");
  malformed.set_crc32(StateFileCrc32(malformed.model_state()));
  ExpectRefused(malformed.SerializeAsString(), "does not parse as a qcal.v1.ModelState");
  // A well-formed ModelState of a layout this server does not know.
  v1::ModelState state;
  ASSERT_TRUE(state.ParseFromString(file.model_state()));
  state.set_histogram_layout(static_cast<v1::HistogramLayout>(7));
  v1::StateFile unknown = file;
  unknown.set_model_state(state.SerializeAsString());
  unknown.set_crc32(StateFileCrc32(unknown.model_state()));
  ExpectRefused(unknown.SerializeAsString(), "histogram_layout is 7");
}

TEST(StateFileCorruptionTest, StatesOfTheWrongKindAreRefused) {
  ModelSnapshot snapshot = Sample(kernels::HistogramLayout::kMergeable);
  v1::StateFile file;
  ASSERT_TRUE(file.ParseFromString(EncodeStateFile(snapshot)));
  v1::ModelState state;
  ASSERT_TRUE(state.ParseFromString(file.model_state()));
  state.set_histogram_layout(v1::HISTOGRAM_LAYOUT_REFERENCE);  // its histogram is mergeable
  file.set_model_state(state.SerializeAsString());
  file.set_crc32(StateFileCrc32(file.model_state()));
  ExpectRefused(file.SerializeAsString(),
                "quantizer 'x._input_quantizer': a mergeable_histogram state for a model of the "
                "reference layout");
}

TEST(StateFileVersionTest, LastUseRoundTripsInVersion2AndIsDroppedFromVersion1) {
  ModelSnapshot snapshot = Sample(kernels::HistogramLayout::kMergeable);
  snapshot.last_used_unix_seconds = 1764000000;
  absl::StatusOr<ModelSnapshot> back = DecodeStateFile(EncodeStateFile(snapshot));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->last_used_unix_seconds, 1764000000);
  // A version 1 writer knew no such field: whatever a file of version 1 holds there is not read.
  v1::StateFile file;
  ASSERT_TRUE(file.ParseFromString(EncodeStateFile(snapshot)));
  file.set_format_version(1);
  back = DecodeStateFile(file.SerializeAsString());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->last_used_unix_seconds, 0);
}

// An FP8 quantizer's format (its spec, the model's defaults, its amax table entry) survives a
// save and load; a format value this server does not know is refused, naming the quantizer.
TEST(StateFileFormatTest, Fp8RoundTripsAndUnknownFormatsAreRefused) {
  ModelSnapshot snapshot = Sample(kernels::HistogramLayout::kMergeable);
  snapshot.default_input.format = kernels::QuantFormat::kFp8E4M3;
  snapshot.quantizers[0].spec.format = kernels::QuantFormat::kFp8E4M3;
  snapshot.amax_table->quantizers.at("x._input_quantizer").format = kernels::QuantFormat::kFp8E4M3;
  const std::string bytes = EncodeStateFile(snapshot);
  absl::StatusOr<ModelSnapshot> back = DecodeStateFile(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->default_input.format, kernels::QuantFormat::kFp8E4M3);
  EXPECT_EQ(back->default_weight.format, kernels::QuantFormat::kInt);
  EXPECT_EQ(back->quantizers[0].spec.format, kernels::QuantFormat::kFp8E4M3);
  EXPECT_EQ(back->quantizers[1].spec.format, kernels::QuantFormat::kInt);
  EXPECT_EQ(back->amax_table->quantizers.at("x._input_quantizer").format,
            kernels::QuantFormat::kFp8E4M3);
  EXPECT_EQ(EncodeStateFile(*back), bytes);

  v1::StateFile file;
  ASSERT_TRUE(file.ParseFromString(bytes));
  v1::ModelState state;
  ASSERT_TRUE(state.ParseFromString(file.model_state()));
  EXPECT_EQ(state.quantizers(0).spec().format(), v1::QUANT_FORMAT_FP8_E4M3);
  state.mutable_quantizers(0)->mutable_spec()->set_format(static_cast<v1::QuantFormat>(9));
  file.set_model_state(state.SerializeAsString());
  file.set_crc32(StateFileCrc32(file.model_state()));
  ExpectRefused(file.SerializeAsString(), "quantizer 'x._input_quantizer': unknown format 9");
}

TEST(StateFileCrcTest, IsZlibsCrc32) {
  // The check value of CRC-32 (IEEE), as gzip and PNG compute it.
  EXPECT_EQ(StateFileCrc32("123456789"), 0xCBF43926u);
}

}  // namespace
}  // namespace qcal::server
