// What Model::Info reports beside the statistics (the histogram's current bins, the max
// calibrators' channel counts, the ONNX bindings), what ExportOnnx says about the table it used,
// and what Reset does to a grown histogram.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "server/core/model.h"

namespace qcal::server {
namespace {

std::shared_ptr<Model> NewModel(ModelConfig config = {.name = "net"}) {
  absl::StatusOr<std::shared_ptr<Model>> model = Model::Create(std::move(config));
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

absl::Status Record(Model& model, const std::string& quantizer, const std::vector<int64_t>& shape,
                    const std::vector<float>& values) {
  return model.Record(quantizer, shape, values, static_cast<int64_t>(values.size() * 4)).status();
}

const QuantizerInfo& Find(const ModelInfo& info, const std::string& name) {
  for (const QuantizerInfo& quantizer : info.quantizers) {
    if (quantizer.spec.name == name) return quantizer;
  }
  ADD_FAILURE() << "no quantizer " << name;
  static const QuantizerInfo kNone;
  return kNone;
}

std::string ReadTestModel(const std::string& name) {
  const std::string path = std::string(QCAL_SOURCE_DIR) + "/server/onnx/testdata/" + name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST(ModelInfoTest, ReportsCurrentBinsAndChannelCounts) {
  auto model = NewModel({.name = "net",
                         .default_input = DefaultInputSpec(),
                         .default_weight = DefaultWeightSpec(),
                         .quantizers = {{.name = "d._input_quantizer"}}});
  // Before data: nothing held.
  EXPECT_EQ(Find(model->Info(), "d._input_quantizer").bins, 0);
  EXPECT_EQ(Find(model->Info(), "d._input_quantizer").amax_size, 0);

  // max |x| = 1, mergeable layout (the default): bins of width 2^-11, the finest for which
  // floor(1 / 2^k) + 1 <= 2 * 2048, so floor(2048) + 1 = 2049 bins.
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {2}, {1.0f, -0.5f}).ok());
  ASSERT_TRUE(Record(*model, "fc._weight_quantizer", {3, 2}, {1, -2, 0.5, 0.25, -7, 6}).ok());
  ModelInfo info = model->Info();
  EXPECT_EQ(Find(info, "a._input_quantizer").spec.num_bins, 2048);
  EXPECT_EQ(Find(info, "a._input_quantizer").bins, 2049);
  EXPECT_EQ(Find(info, "a._input_quantizer").amax_size, 0);
  EXPECT_EQ(Find(info, "fc._weight_quantizer").bins, 0);
  EXPECT_EQ(Find(info, "fc._weight_quantizer").amax_size, 3);

  // 1.5 keeps the width (floor(1.5 * 2048) + 1 = 3073 <= 4096): 3073 bins; the starting count
  // stays what the spec says.
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {1}, {1.5f}).ok());
  info = model->Info();
  EXPECT_EQ(Find(info, "a._input_quantizer").spec.num_bins, 2048);
  EXPECT_EQ(Find(info, "a._input_quantizer").bins, 3073);
  EXPECT_EQ(model->GetHistogram("a._input_quantizer")->counts.size(), 3073u);
}

// pytorch-quantization's HistogramCalibrator keeps its grown _num_bins across reset(); qcal's
// histogram starts again at the starting num_bins (a deliberate deviation, README and
// DESIGN.md), so that a reset model calibrates as a new one would. (The reference layout's
// growth; ResetModel keeps the layout.)
TEST(ModelInfoTest, ResetHistogramStartsAgainAtTheStartingBinCount) {
  auto model = NewModel({.name = "net",
                         .default_input = DefaultInputSpec(),
                         .default_weight = DefaultWeightSpec(),
                         .quantizers = {{.name = "a._input_quantizer"}},
                         .histogram_layout = kernels::HistogramLayout::kReference});
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {1}, {1.0f}).ok());
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {1}, {1.5f}).ok());
  ASSERT_EQ(model->GetHistogram("a._input_quantizer")->counts.size(), 3072u);

  model->Reset();
  EXPECT_EQ(model->Info().histogram_layout, kernels::HistogramLayout::kReference);
  EXPECT_EQ(Find(model->Info(), "a._input_quantizer").bins, 0);
  // max |x| = 2 over 2048 bins (the reference would use 3072): width 2/2048, so 0.5 lands in bin
  // 512, 1.0 in bin 1024 and 2.0 (the range's end) in the last bin, 2047.
  ASSERT_TRUE(Record(*model, "a._input_quantizer", {3}, {0.5f, 1.0f, -2.0f}).ok());
  const absl::StatusOr<HistogramSnapshot> histogram = model->GetHistogram("a._input_quantizer");
  ASSERT_TRUE(histogram.ok()) << histogram.status();
  ASSERT_EQ(histogram->counts.size(), 2048u);
  ASSERT_EQ(histogram->edges.size(), 2049u);
  EXPECT_EQ(histogram->edges[1], 2.0f / 2048);
  EXPECT_EQ(histogram->edges.back(), 2.0f);
  EXPECT_EQ(histogram->total, 3u);
  std::vector<uint64_t> expected(2048, 0);
  expected[512] = expected[1024] = expected[2047] = 1;
  EXPECT_EQ(histogram->counts, expected);
  EXPECT_EQ(Find(model->Info(), "a._input_quantizer").bins, 2048);
}

TEST(ModelInfoTest, OnnxBindingsOnceAnOnnxModelIsStored) {
  auto model = NewModel({.name = "cnn"});
  ASSERT_TRUE(Record(*model, "conv1._input_quantizer", {1, 1, 2, 2}, {0.5, -1, 2, 0.25}).ok());
  ASSERT_TRUE(Record(*model, "conv2._input_quantizer", {2}, {3, -1}).ok());
  ASSERT_TRUE(Record(*model, "nowhere._input_quantizer", {1}, {1}).ok());
  ASSERT_TRUE(Record(*model, "head._input_quantizer", {1}, {1}).ok());
  EXPECT_TRUE(model->Info().onnx_bindings.empty());

  const absl::StatusOr<OnnxUploadResult> uploaded = model->UploadOnnx(
      ReadTestModel("cnn_bn.onnx"), {{"head._input_quantizer", "/Flatten_output_0"}});
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  const ModelInfo info = model->Info();
  EXPECT_TRUE(info.has_onnx);
  // As the upload bound them; the quantizer that matches no node is absent, the tensor map's
  // pair is present.
  EXPECT_EQ(info.onnx_bindings, uploaded->bindings);
  EXPECT_EQ(info.onnx_bindings.at("conv1._input_quantizer"), "input");
  EXPECT_EQ(info.onnx_bindings.at("conv2._input_quantizer"), "/pool/MaxPool_output_0");
  EXPECT_EQ(info.onnx_bindings.at("head._input_quantizer"), "/Flatten_output_0");
  EXPECT_FALSE(info.onnx_bindings.contains("nowhere._input_quantizer"));

  // A quantizer recorded after the upload is bound too.
  ASSERT_TRUE(
      Record(*model, "conv1._weight_quantizer", {4, 1, 3, 3}, std::vector<float>(36, 1)).ok());
  EXPECT_TRUE(model->Info().onnx_bindings.contains("conv1._weight_quantizer"));
}

TEST(ModelInfoTest, ExportSaysWhichTableItUsed) {
  auto model = NewModel({.name = "cnn"});
  ASSERT_TRUE(Record(*model, "conv1._input_quantizer", {1, 1, 2, 2}, {0.5, -1, 2, 0.25}).ok());
  ASSERT_TRUE(model->UploadOnnx(ReadTestModel("cnn_bn.onnx"), {}).ok());
  ASSERT_TRUE(model->ComputeAmax({.params = {.method = "percentile", .percentile = 99.0}}).ok());

  absl::StatusOr<OnnxExportResult> stored = model->ExportOnnx(std::nullopt, QdqTarget::kTensorRT);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->amax_method, "percentile");
  EXPECT_FALSE(stored->computed);

  absl::StatusOr<OnnxExportResult> computed =
      model->ExportOnnx(AmaxRequest{.params = {.method = "mse"}}, QdqTarget::kTensorRT);
  ASSERT_TRUE(computed.ok()) << computed.status();
  EXPECT_EQ(computed->amax_method, "mse");
  EXPECT_TRUE(computed->computed);
  // ... and stored it: the next export without `compute` uses it.
  stored = model->ExportOnnx(std::nullopt, QdqTarget::kTensorRT);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->amax_method, "mse");
}

}  // namespace
}  // namespace qcal::server
