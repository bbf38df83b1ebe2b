#include "server/core/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<Model> NewModel(ModelConfig config = {.name = "net"}) {
  absl::StatusOr<std::shared_ptr<Model>> model = Model::Create(std::move(config));
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

absl::StatusOr<BatchStats> Record(Model& model, const std::string& quantizer,
                                  const std::vector<int64_t>& shape,
                                  const std::vector<float>& values) {
  return model.Record(quantizer, shape, values, static_cast<int64_t>(values.size() * 4));
}

const QuantizerInfo* FindQuantizer(const ModelInfo& info, const std::string& name) {
  for (const QuantizerInfo& quantizer : info.quantizers) {
    if (quantizer.spec.name == name) return &quantizer;
  }
  return nullptr;
}

TEST(ModelTest, FirstRecordCreatesQuantizersWithTheRoleDefaults) {
  auto model = NewModel();
  ASSERT_TRUE(Record(*model, "conv1._input_quantizer", {2, 2}, {1, -2, 3, -4}).ok());
  ASSERT_TRUE(Record(*model, "conv1._weight_quantizer", {3, 2}, {1, -2, 0.5, 0.25, -7, 6}).ok());
  const ModelInfo info = model->Info();
  ASSERT_EQ(info.quantizers.size(), 2u);
  const QuantizerInfo* input = FindQuantizer(info, "conv1._input_quantizer");
  ASSERT_NE(input, nullptr);
  EXPECT_EQ(input->spec.calibrator, CalibratorKind::kHistogram);
  EXPECT_EQ(input->spec.num_bins, 2048);
  EXPECT_EQ(input->spec.num_bits, 8);
  EXPECT_FALSE(input->spec.axis.has_value());
  EXPECT_EQ(input->stats, (BatchStats{.batches = 1, .elements = 4, .nonfinite = 0, .bytes = 16}));
  const QuantizerInfo* weight = FindQuantizer(info, "conv1._weight_quantizer");
  ASSERT_NE(weight, nullptr);
  EXPECT_EQ(weight->spec.calibrator, CalibratorKind::kMax);
  EXPECT_EQ(weight->spec.axis, 0);

  const absl::StatusOr<AmaxTableForms> table = model->ComputeAmax({.params = {.method = "max"}});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->table.quantizers.at("conv1._input_quantizer").amax, std::vector<float>{4.0f});
  EXPECT_EQ(table->table.quantizers.at("conv1._weight_quantizer").amax,
            (std::vector<float>{2.0f, 0.5f, 7.0f}));
}

TEST(ModelTest, RefusedRecordCreatesNothing) {
  auto model = NewModel();
  // Weight default: per-channel on axis 0, which a scalar does not have.
  const absl::Status status = Record(*model, "fc._weight_quantizer", {}, {1.0f}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("model 'net'"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("quantizer 'fc._weight_quantizer': axis 0 is out of "
                        "range for a batch of rank 0"));
  EXPECT_TRUE(model->Info().quantizers.empty());
}

TEST(ModelTest, ChannelCountChangeIsRefusedAndChangesNothing) {
  auto model = NewModel();
  ASSERT_TRUE(Record(*model, "fc._weight_quantizer", {2, 2}, {1, 2, 3, 4}).ok());
  const absl::Status status = Record(*model, "fc._weight_quantizer", {3, 1}, {9, 9, 9}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("3 channels"));
  const ModelInfo info = model->Info();
  EXPECT_EQ(info.quantizers.at(0).stats.batches, 1);
  EXPECT_EQ(model->ComputeAmax({.params = {.method = "max"}})
                ->table.quantizers.at("fc._weight_quantizer")
                .amax,
            (std::vector<float>{2.0f, 4.0f}));
}

// A tiny first batch fixes a tiny bin width; normal data after it would need ~2e10 bins. The
// server's histograms, past 2^20 bins, coarsen to their num_bins (kernels/histogram.h) instead of
// refusing the quantizer forever, every count stays exact, and entropy searches a histogram that
// spans the data. (The reference layout's rule: the mergeable layout's bins follow the data's max.)
TEST(ModelTest, TinyFirstBatchThenNormalDataCoarsensWithinTheBinLimit) {
  auto model = NewModel({.name = "net", .histogram_layout = kernels::HistogramLayout::kReference});
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {2}, {1e-6f, -5e-7f}).ok());
  const absl::StatusOr<BatchStats> normal =
      Record(*model, "a._input_quantizer", {4}, {10.0f, -3.0f, 0.5f, 1e-6f});
  ASSERT_TRUE(normal.ok()) << normal.status();
  const absl::StatusOr<HistogramSnapshot> histogram = model->GetHistogram("a._input_quantizer");
  ASSERT_TRUE(histogram.ok()) << histogram.status();
  // Coarsened to num_bins (2048), not to the 2^20 bin limit: 2^24 first-batch bins merged, width
  // 8192 * 1e-6 = 0.008192, ceil(10 / 0.008192) = 1221 bins up to 10.002432.
  EXPECT_LE(histogram->counts.size(), size_t{2048});
  ASSERT_EQ(histogram->counts.size(), size_t{1221});
  EXPECT_EQ(histogram->edges[1], 8192 * 1e-6f);
  EXPECT_GE(histogram->edges.back(), 10.0f);
  EXPECT_EQ(histogram->abs_max, 10.0f);
  EXPECT_EQ(histogram->total, 6u);
  // The three tiny values in bin 0; 0.5, 3 and 10 in bins trunc(v / 0.008192) = 61, 366, 1220.
  EXPECT_EQ(histogram->counts[0], 3u);
  EXPECT_EQ(histogram->counts[61], 1u);
  EXPECT_EQ(histogram->counts[366], 1u);
  EXPECT_EQ(histogram->counts[1220], 1u);
  uint64_t sum = 0;
  for (uint64_t count : histogram->counts) sum += count;
  EXPECT_EQ(sum, 6u);
  const absl::StatusOr<AmaxTableForms> max = model->ComputeAmax({.params = {.method = "max"}});
  ASSERT_TRUE(max.ok()) << max.status();
  EXPECT_EQ(max->table.quantizers.at("a._input_quantizer").amax, std::vector<float>{10.0f});
  EXPECT_TRUE(model->ComputeAmax({.params = {.method = "percentile", .percentile = 99.0}}).ok());
  // Entropy's candidates are the edges from start_bin 128 on: 128 * 0.008192 = 1.048576 up to
  // the last edge, so its amax lies in (1, 10.002432] whatever it picks among 6 values.
  const absl::StatusOr<AmaxTableForms> entropy =
      model->ComputeAmax({.params = {.method = "entropy"}});
  ASSERT_TRUE(entropy.ok()) << entropy.status();
  const std::vector<float>& amax = entropy->table.quantizers.at("a._input_quantizer").amax;
  ASSERT_EQ(amax.size(), 1u);
  EXPECT_GT(amax[0], 1.0f);
  EXPECT_LE(amax[0], histogram->edges.back());
}

TEST(ModelTest, NonFiniteValuesAreCountedNotRefused) {
  auto model = NewModel();
  const float inf = std::numeric_limits<float>::infinity();
  const absl::StatusOr<BatchStats> applied =
      Record(*model, "a._input_quantizer", {5}, {1.0f, std::nanf(""), inf, -inf, -2.0f});
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->elements, 5);
  EXPECT_EQ(applied->nonfinite, 3);
  const absl::StatusOr<AmaxTableForms> table = model->ComputeAmax({.params = {.method = "max"}});
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->table.quantizers.at("a._input_quantizer").amax, std::vector<float>{2.0f});
  EXPECT_EQ(table->table.quantizers.at("a._input_quantizer").nonfinite, 3);
  EXPECT_EQ(model->GetHistogram("a._input_quantizer")->total, 2u);
}

TEST(ModelTest, ComputeAmaxBeforeDataIsAPreconditionError) {
  auto model = NewModel({.name = "net",
                         .default_input = DefaultInputSpec(),
                         .default_weight = DefaultWeightSpec(),
                         .quantizers = {{.name = "a._input_quantizer"}}});
  const absl::Status status = model->ComputeAmax({.params = {.method = "entropy"}}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("model 'net' has no recorded data"));
  EXPECT_EQ(model->GetAmaxTable().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ModelTest, MaxCalibratorsReportMaxAndOverridesApply) {
  auto model = NewModel();
  std::vector<float> ramp(1000);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<float>(i) / 100.0f;
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {1000}, ramp).ok());
  ASSERT_TRUE(Record(*model, "b._input_quantizer", {1000}, ramp).ok());
  ASSERT_TRUE(Record(*model, "a._weight_quantizer", {2, 2}, {1, -3, 2, 0.5}).ok());
  const absl::StatusOr<AmaxTableForms> table =
      model->ComputeAmax({.params = {.method = "percentile", .percentile = 100},
                          .overrides = {{"b._input_quantizer", {.method = "max"}}}});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->table.method, "percentile");
  EXPECT_EQ(table->table.quantizers.at("a._input_quantizer").method, "percentile");
  EXPECT_EQ(table->table.quantizers.at("b._input_quantizer").method, "max");
  EXPECT_EQ(table->table.quantizers.at("b._input_quantizer").amax, std::vector<float>{9.99f});
  EXPECT_EQ(table->table.quantizers.at("a._weight_quantizer").method, "max");
  EXPECT_EQ(table->table.quantizers.at("a._weight_quantizer").amax,
            (std::vector<float>{3.0f, 2.0f}));
  EXPECT_EQ(model->Info().amax_method, "percentile");
}

TEST(ModelTest, RefusedComputeAmaxKeepsThePreviousTable) {
  auto model = NewModel();
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {3}, {1, 2, 3}).ok());
  ASSERT_TRUE(model->ComputeAmax({.params = {.method = "max"}}).ok());
  const std::string json_before = model->GetAmaxTable()->json;

  EXPECT_EQ(model->ComputeAmax({.params = {.method = "kl"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      model->ComputeAmax({.params = {.method = "entropy", .start_bin = 4096}}).status().code(),
      absl::StatusCode::kInvalidArgument);
  const absl::Status unknown_override =
      model->ComputeAmax({.params = {.method = "max"}, .overrides = {{"zz", {.method = "max"}}}})
          .status();
  EXPECT_EQ(unknown_override.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown_override.message()), HasSubstr("'zz'"));
  const absl::Status bad_override =
      model
          ->ComputeAmax(
              {.params = {.method = "max"},
               .overrides = {{"a._input_quantizer", {.method = "percentile", .percentile = 101}}}})
          .status();
  EXPECT_EQ(bad_override.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_override.message()),
              HasSubstr("override for quantizer 'a._input_quantizer'"));

  EXPECT_EQ(model->Info().amax_method, "max");
  EXPECT_EQ(model->GetAmaxTable()->json, json_before);
}

TEST(ModelTest, ResetKeepsDeclaredQuantizersAndDropsTheRest) {
  auto model = NewModel({.name = "net",
                         .default_input = DefaultInputSpec(),
                         .default_weight = DefaultWeightSpec(),
                         .quantizers = {{.name = "a._input_quantizer", .num_bits = 6}}});
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {2}, {1, 2}).ok());
  ASSERT_TRUE(Record(*model, "b._input_quantizer", {2}, {1, 2}).ok());
  ASSERT_TRUE(model->ComputeAmax({.params = {.method = "max"}}).ok());
  model->Reset();
  const ModelInfo info = model->Info();
  ASSERT_EQ(info.quantizers.size(), 1u);
  EXPECT_EQ(info.quantizers[0].spec.name, "a._input_quantizer");
  EXPECT_EQ(info.quantizers[0].spec.num_bits, 6);
  EXPECT_EQ(info.quantizers[0].stats, BatchStats{});
  EXPECT_EQ(info.amax_method, "");
  EXPECT_TRUE(model->GetHistogram("a._input_quantizer")->counts.empty());
  EXPECT_EQ(model->ComputeAmax({.params = {.method = "max"}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ModelTest, GetHistogramErrors) {
  auto model = NewModel();
  ASSERT_TRUE(Record(*model, "a._weight_quantizer", {1, 2}, {1, 2}).ok());
  EXPECT_EQ(model->GetHistogram("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(model->GetHistogram("a._weight_quantizer").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Every name the model takes is checked as the client checks it (qcal/names.h): a newline in a
// quantizer name would otherwise forge lines of the TensorRT calibration cache.
TEST(ModelTest, NamesThatAreNotNamesAreRefusedAndCreateNothing) {
  const auto refused = [](const absl::Status& status, const std::string& text) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(text));
  };
  refused(Model::Create({.name = "a\nb"}).status(),
          "model name 'a\\nb' contains control character 0x0a at offset 1; names are 1 to 1024 "
          "bytes of UTF-8 without control characters");
  refused(Model::Create({.name = ""}).status(), "model name is empty");
  refused(Model::Create({.name = std::string(1025, 'm')}).status(), "is 1025 bytes long");
  refused(Model::Create({.name = "\xff"}).status(), "is not valid UTF-8");
  EXPECT_TRUE(Model::Create({.name = std::string(1024, 'm')}).ok());
  refused(Model::Create({.name = "m",
                         .default_input = DefaultInputSpec(),
                         .default_weight = DefaultWeightSpec(),
                         .quantizers = {{.name = "q\x7f"}}})
              .status(),
          "model 'm': declared quantizer name 'q\\x7f' contains control character 0x7f");

  auto model = NewModel();
  refused(Record(*model, "x\ninjected: 00000000", {1}, {1.0f}).status(),
          "model 'net': quantizer name 'x\\ninjected: 00000000' contains control character");
  EXPECT_TRUE(model->Info().quantizers.empty());
  refused(model->GetHistogram("tab\t").status(), "model 'net': quantizer name 'tab\\t'");
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {2}, {1.0f, -2.0f}).ok());
  refused(
      model->ComputeAmax({.params = {.method = "max"}, .overrides = {{"\x01", {.method = "max"}}}})
          .status(),
      "quantizer name of an override");
  EXPECT_EQ(model->Info().amax_method, "");
  refused(model->UploadOnnx("not parsed", {{"a._input_quantizer", "in\rput"}}).status(),
          "ONNX tensor name of quantizer 'a._input_quantizer' in tensor_map");
  refused(model->UploadOnnx("not parsed", {{"", "input"}}).status(),
          "quantizer name in tensor_map is empty");
  EXPECT_FALSE(model->Info().has_onnx);
}

TEST(ModelTest, ComputeAmaxReturnsTheFormsOfTheTableItComputed) {
  auto model = NewModel();
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {3}, {0.5f, -2.54f, 1.0f}).ok());
  const absl::StatusOr<AmaxTableForms> forms = model->ComputeAmax({.params = {.method = "max"}});
  ASSERT_TRUE(forms.ok()) << forms.status();
  EXPECT_EQ(forms->table.method, "max");
  // 2.54 / 127 = 0.02 (float32 bits 3ca3d70a).
  EXPECT_EQ(forms->trt_cache, "TRT-8601-EntropyCalibration2\na._input_quantizer: 3ca3d70a\n");
  EXPECT_THAT(forms->json, HasSubstr("\"method\": \"max\""));
  EXPECT_TRUE(forms->warnings.empty());
  const absl::StatusOr<AmaxTableForms> stored = model->GetAmaxTable();
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->trt_cache, forms->trt_cache);
  EXPECT_EQ(stored->json, forms->json);
}

TEST(ModelTest, CreateRefusesBadDescriptors) {
  const auto code = [](ModelConfig config) { return Model::Create(std::move(config)).status(); };
  EXPECT_EQ(code({.name = ""}).code(), absl::StatusCode::kInvalidArgument);
  QuantizerSpec histogram_with_axis = DefaultInputSpec();
  histogram_with_axis.axis = 1;
  const absl::Status axis_status = code({.name = "m", .default_input = histogram_with_axis});
  EXPECT_EQ(axis_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(axis_status.message()), HasSubstr("per-tensor only"));
  for (int bits : {1, 17, 0}) {
    QuantizerSpec spec = DefaultWeightSpec();
    spec.num_bits = bits;
    const absl::Status status = code({.name = "m", .default_weight = spec});
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bits;
    EXPECT_THAT(std::string(status.message()), HasSubstr("outside 2..16"));
  }
  // FP8 E4M3 is one signed 8-bit format: other num_bits, or unsigned, are refused, naming the
  // descriptor and the field.
  QuantizerSpec fp8 = DefaultInputSpec();
  fp8.format = kernels::QuantFormat::kFp8E4M3;
  EXPECT_TRUE(code({.name = "m", .default_input = fp8}).ok());
  QuantizerSpec fp8_4bit = fp8;
  fp8_4bit.num_bits = 4;
  const absl::Status bits_status = code({.name = "m", .default_input = fp8_4bit});
  EXPECT_EQ(bits_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bits_status.message()),
              HasSubstr("default_input: default descriptor: num_bits 4 does not fit format "
                        "fp8_e4m3 (8 bits, or unset)"));
  QuantizerSpec fp8_unsigned = fp8;
  fp8_unsigned.name = "a._input_quantizer";
  fp8_unsigned.is_unsigned = true;
  const absl::Status unsigned_status = code({.name = "m", .quantizers = {fp8_unsigned}});
  EXPECT_EQ(unsigned_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unsigned_status.message()),
              HasSubstr("quantizer 'a._input_quantizer': format fp8_e4m3 is signed; unsigned "
                        "must be false"));
  const absl::Status twice = code({.name = "m",
                                   .default_input = DefaultInputSpec(),
                                   .default_weight = DefaultWeightSpec(),
                                   .quantizers = {{.name = "a"}, {.name = "a"}}});
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(twice.message()), HasSubstr("declared twice"));
}

}  // namespace
}  // namespace qcal::server

namespace qcal::server {
namespace {

// Issue 8: a 1-D weight batch of 2^27 values made a 134M-channel table whose response aborted
// the server. The channel count is bounded (--max-channels) when the batch arrives, before any
// state is allocated, and the refused batch creates nothing.
TEST(ModelLimitsTest, ChannelsBeyondTheLimitAreRefusedAndCreateNothing) {
  auto model = NewModel({.name = "net", .limits = {.max_channels = 4}});
  const absl::Status refused = Record(*model, "w._weight_quantizer", {5}, {1, 2, 3, 4, 5}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("quantizer 'w._weight_quantizer': the batch has 5 channels on axis 0, "
                        "more than the server's --max-channels 4"));
  EXPECT_TRUE(model->Info().quantizers.empty());
  ASSERT_TRUE(Record(*model, "w._weight_quantizer", {4, 2}, {1, 2, 3, 4, 5, 6, 7, -8}).ok());
  EXPECT_EQ(model->ComputeAmax({.params = {.method = "max"}})
                ->table.quantizers.at("w._weight_quantizer")
                .amax,
            (std::vector<float>{2, 4, 6, 8}));
}

// num_bins allocates on the first batch however small it is: bounded by --max-num-bins, in the
// defaults, declared quantizers and so in quantizers Record creates.
TEST(ModelLimitsTest, NumBinsBeyondTheLimitAreRefused) {
  const ModelLimits limits{.max_num_bins = 4096};
  QuantizerSpec wide = DefaultInputSpec();
  wide.num_bins = 4097;
  absl::Status refused =
      Model::Create({.name = "m", .default_input = wide, .limits = limits}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("model 'm', default_input: default descriptor: num_bins 4097 is more "
                        "than the server's --max-num-bins 4096"));
  wide.name = "a._input_quantizer";
  refused = Model::Create({.name = "m", .quantizers = {wide}, .limits = limits}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("quantizer 'a._input_quantizer'"));
  wide.num_bins = 4096;
  EXPECT_TRUE(Model::Create({.name = "m", .quantizers = {wide}, .limits = limits}).ok());
  // A max calibrator keeps no bins: its num_bins is not a cost.
  QuantizerSpec max = DefaultWeightSpec();
  max.num_bins = 1 << 20;
  EXPECT_TRUE(Model::Create({.name = "m", .default_weight = max, .limits = limits}).ok());
}

// A table whose response would pass --max-response-bytes is refused before anything is stored;
// asking for fewer forms makes it fit.
TEST(ModelLimitsTest, OversizeResponsesAreRefusedAndStoreNothing) {
  auto model = NewModel({.name = "net", .limits = {.max_response_bytes = 4096}});
  std::vector<float> weights(1000);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i) + 0.5f;
  ASSERT_TRUE(Record(*model, "w._weight_quantizer", {1000}, weights).ok());
  const absl::StatusOr<AmaxTableForms> all = model->ComputeAmax({.params = {.method = "max"}});
  EXPECT_EQ(all.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(all.status().message()),
              HasSubstr("more than the server's --max-response-bytes 4096; nothing was stored"));
  EXPECT_EQ(model->GetAmaxTable().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(model->Info().amax_method.empty());

  // The TensorRT cache lists activations only: this table's cache is its header line.
  const absl::StatusOr<AmaxTableForms> trt = model->ComputeAmax(
      {.params = {.method = "max"}}, {.message = false, .json = false, .trt_cache = true});
  ASSERT_TRUE(trt.ok()) << trt.status();
  EXPECT_EQ(trt->trt_cache, "TRT-8601-EntropyCalibration2\n");
  EXPECT_TRUE(trt->json.empty());
  EXPECT_FALSE(trt->included.message);
  EXPECT_EQ(model->Info().amax_method, "max");
  EXPECT_EQ(model->GetAmaxTable().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(model->GetAmaxTable({.message = false, .json = false, .trt_cache = true}).ok());
}

// A cancelled call stops its searches (polled between quantizers and inside each search) and
// stores nothing; the count of polls shows the work stopped, not a clock.
TEST(ModelCancelTest, CancelledComputeAmaxStopsAndStoresNothing) {
  auto model = NewModel();
  std::vector<float> values(20000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37f * i) * (1 + i % 97);
  for (int q = 0; q < 8; ++q) {
    ASSERT_TRUE(Record(*model, absl::StrCat("q", q, "._input_quantizer"),
                       {static_cast<int64_t>(values.size())}, values)
                    .ok());
  }
  std::atomic<int> polls{0};
  AmaxRequest request{.params = {.method = "mse"}};
  request.cancelled = [&polls] { return polls.fetch_add(1) >= 3; };
  const absl::StatusOr<AmaxTableForms> cancelled = model->ComputeAmax(request);
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled) << cancelled.status();
  // Every quantizer polls once before its search and the search stops at its first true poll.
  EXPECT_LE(polls.load(), 3 + 8 + 8);
  EXPECT_EQ(model->GetAmaxTable().status().code(), absl::StatusCode::kFailedPrecondition);

  // Not cancelled: the same table as without a hook, and it is stored.
  request.cancelled = [] { return false; };
  const absl::StatusOr<AmaxTableForms> done = model->ComputeAmax(request);
  ASSERT_TRUE(done.ok()) << done.status();
  const absl::StatusOr<AmaxTableForms> plain = model->ComputeAmax({.params = {.method = "mse"}});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(done->json, plain->json);
  EXPECT_EQ(model->Info().amax_method, "mse");
}

// The searches run on snapshots without the model's or the quantizer's lock: a Record into the
// quantizer being searched completes while a search is held inside its cancellation poll.
TEST(ModelCancelTest, RecordIsNotHeldUpByASearch) {
  auto model = NewModel();
  std::vector<float> values(4096);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 331) * 0.01f;
  ASSERT_TRUE(Record(*model, "x._input_quantizer", {4096}, values).ok());
  absl::Notification searching, recorded;
  std::atomic<bool> held_up{false};
  AmaxRequest request{.params = {.method = "entropy"}};
  request.cancelled = [&] {
    if (!searching.HasBeenNotified()) searching.Notify();
    // Waits for the Record below; under the quantizer's lock it could not happen until this
    // wait gave up.
    if (!recorded.WaitForNotificationWithTimeout(absl::Seconds(10))) held_up = true;
    return false;
  };
  std::thread search([&] { EXPECT_TRUE(model->ComputeAmax(request).ok()); });
  searching.WaitForNotification();
  EXPECT_TRUE(Record(*model, "x._input_quantizer", {4096}, values).ok());
  recorded.Notify();
  search.join();
  EXPECT_FALSE(held_up.load());
  EXPECT_EQ(model->Info().quantizers.at(0).stats.batches, 2);
}

}  // namespace
}  // namespace qcal::server

namespace qcal::server {
namespace {

// ComputeAmax refuses by an upper bound of the response, before building it: the bound must never
// be below the real size, or an oversize response would be built and sent. With the limit one
// byte below the real JSON of a per-channel table of long float texts, the JSON alone is refused;
// at the bound's own slack above it, it passes.
TEST(ModelLimitsTest, TheResponseBoundIsNeverBelowTheRealSize) {
  std::vector<float> weights(3000);
  for (size_t i = 0; i < weights.size(); ++i) {
    weights[i] = (i % 2 ? 1.17549435e-38f : 1.0f / 3.0f) * static_cast<float>(i + 1);
  }
  const TableForms json_only{.message = false, .json = true, .trt_cache = false};
  auto unlimited = NewModel({.name = "net", .limits = {.max_response_bytes = 1 << 30}});
  ASSERT_TRUE(Record(*unlimited, "w._weight_quantizer", {3000}, weights).ok());
  const absl::StatusOr<AmaxTableForms> full =
      unlimited->ComputeAmax({.params = {.method = "max"}}, json_only);
  ASSERT_TRUE(full.ok()) << full.status();
  const int64_t json_bytes = static_cast<int64_t>(full->json.size());
  ASSERT_GT(json_bytes, 3000 * 20);  // a line of about 22 bytes per value

  auto tight = NewModel({.name = "net", .limits = {.max_response_bytes = json_bytes - 1}});
  ASSERT_TRUE(Record(*tight, "w._weight_quantizer", {3000}, weights).ok());
  EXPECT_EQ(tight->ComputeAmax({.params = {.method = "max"}}, json_only).status().code(),
            absl::StatusCode::kResourceExhausted);
  // The bound is at most a third above the real size here.
  auto roomy = NewModel({.name = "net", .limits = {.max_response_bytes = json_bytes * 4 / 3}});
  ASSERT_TRUE(Record(*roomy, "w._weight_quantizer", {3000}, weights).ok());
  EXPECT_TRUE(roomy->ComputeAmax({.params = {.method = "max"}}, json_only).ok());
}

}  // namespace
}  // namespace qcal::server
