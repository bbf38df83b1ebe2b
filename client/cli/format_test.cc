#include "client/cli/format.h"

#include <gtest/gtest.h>

namespace qcal::cli {
namespace {

v1::Histogram FourBins() {
  v1::Histogram histogram;
  histogram.set_model("m");
  histogram.set_quantizer("conv1._input_quantizer");
  for (uint64_t count : {10u, 0u, 5u, 1u}) histogram.add_counts(count);
  for (float edge : {0.0f, 0.5f, 1.0f, 1.5f, 2.0f}) histogram.add_edges(edge);
  histogram.set_abs_max(1.75f);
  histogram.set_total(16);
  return histogram;
}

// Names are padded by characters, not bytes: 'modèle' (7 bytes, 6 characters) lines up with
// 'plain1'.
TEST(FormatTest, ModelTableAlignsNamesByCharacters) {
  std::vector<v1::ModelInfo> models(2);
  models[0].set_name("plain1");
  models[1].set_name("mod\xC3\xA8le");
  const std::string table = FormatModels(models);
  const size_t first = table.find('\n');
  const size_t second = table.find('\n', first + 1);
  const std::string plain = table.substr(first + 1, second - first - 1);
  const std::string accented = table.substr(second + 1, table.find('\n', second + 1) - second - 1);
  EXPECT_EQ(accented.size(), plain.size() + 1);  // one more byte, the same columns
  EXPECT_EQ(plain.substr(32), accented.substr(33));
}

TEST(FormatTest, HistogramJsonKeepsCountsEdgesAndTotals) {
  const nlohmann::json json = HistogramJson(FourBins());
  EXPECT_EQ(json["counts"], nlohmann::json({10, 0, 5, 1}));
  EXPECT_EQ(json["edges"], nlohmann::json({0.0, 0.5, 1.0, 1.5, 2.0}));
  EXPECT_EQ(json["abs_max"], 1.75);
  EXPECT_EQ(json["total"], 16);
  EXPECT_EQ(json["quantizer"], "conv1._input_quantizer");
}

TEST(FormatTest, HistogramTextSumsBinsIntoLabelledRows) {
  const std::string text = FormatHistogram(FourBins(), /*rows=*/2);
  EXPECT_NE(text.find("bins 4, range [0, 2], abs_max 1.75, total 16, nonfinite 0\n"
                      "2 rows of 2 bins each, counts summed per row\n"),
            std::string::npos)
      << text;
  // Rows of two bins: 10 + 0 (the peak, a full bar) and 5 + 1 (3/5 of it), each labelled with
  // its bins and edges; the last row holds the range's end.
  EXPECT_NE(text.find("\n[0, 2)        [0, 1)                              10 " +
                      std::string(50, '#') + "\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n[2, 4)        [1, 2]                               6 " +
                      std::string(30, '#') + "\n"),
            std::string::npos)
      << text;
}

TEST(FormatTest, HistogramTextSaysHowManyBinsARowSums) {
  v1::Histogram histogram;
  for (int i = 0; i < 2048; ++i) histogram.add_counts(i == 1000 ? 7 : 0);
  for (int i = 0; i <= 2048; ++i) histogram.add_edges(static_cast<float>(i) / 512);
  const std::string text = FormatHistogram(histogram);
  EXPECT_NE(text.find("\n16 rows of 128 bins each, counts summed per row\n"), std::string::npos)
      << text;
  // Bin 1000 is in the eighth row: bins [896, 1024), edges [1.75, 2).
  EXPECT_NE(text.find("\n[896, 1024)   [1.75, 2)                            7 "), std::string::npos)
      << text;
  EXPECT_NE(text.find("\n[1920, 2048)  [3.75, 4]                            0 \n"),
            std::string::npos)
      << text;

  // 5 bins in 2 rows: 3 bins, then the remaining 2.
  v1::Histogram five;
  for (uint64_t count : {1u, 2u, 3u, 4u, 5u}) five.add_counts(count);
  for (float edge : {0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f}) five.add_edges(edge);
  const std::string uneven = FormatHistogram(five, /*rows=*/2);
  EXPECT_NE(uneven.find("\n2 rows of 3 bins each (the last row 2), counts summed per row\n"),
            std::string::npos)
      << uneven;
  EXPECT_NE(uneven.find("\n[3, 5)        [3, 5]                               9 "),
            std::string::npos)
      << uneven;
}

TEST(FormatTest, AmaxTableShowsPerTensorValueAndPerChannelRange) {
  v1::AmaxTable table;
  table.set_model("m");
  table.set_method("entropy");
  v1::QuantizerAmax* input = table.add_quantizers();
  input->set_name("conv1._input_quantizer");
  input->set_method("entropy");
  input->add_amax(2.64f);
  input->set_num_bits(8);
  input->set_batches(2);
  input->set_elements(123);
  v1::QuantizerAmax* weight = table.add_quantizers();
  weight->set_name("conv1._weight_quantizer");
  weight->set_method("max");
  for (float amax : {0.78f, 0.25f, 1.5f}) weight->add_amax(amax);
  weight->set_axis(0);
  weight->set_num_bits(8);
  input->set_format(v1::QUANT_FORMAT_FP8_E4M3);
  const std::string text = FormatAmaxTable(table);
  EXPECT_NE(text.find(" BITS FORMAT   AXIS "), std::string::npos) << text;
  EXPECT_NE(text.find("    8 fp8_e4m3    - "), std::string::npos) << text;
  EXPECT_NE(text.find("    8 int         0 "), std::string::npos) << text;
  EXPECT_NE(text.find("model m, method entropy"), std::string::npos) << text;
  EXPECT_NE(text.find("2.64 "), std::string::npos) << text;
  EXPECT_NE(text.find("3 ch in [0.25, 1.5]"), std::string::npos) << text;
}

TEST(FormatTest, ModelInfoJsonHasStatisticsPerQuantizer) {
  v1::ModelInfo info;
  info.set_name("m");
  info.set_amax_method("max");
  v1::QuantizerStats* q = info.add_quantizers();
  q->mutable_spec()->set_name("fc._weight_quantizer");
  q->mutable_spec()->set_calibrator(v1::CALIBRATOR_MAX);
  q->mutable_spec()->set_axis(0);
  q->set_batches(1);
  q->set_elements(40);
  q->set_bytes(160);
  const nlohmann::json json = ModelInfoJson(info);
  EXPECT_EQ(json["name"], "m");
  EXPECT_EQ(json["has_onnx"], false);
  ASSERT_EQ(json["quantizers"].size(), 1u);
  EXPECT_EQ(json["quantizers"][0]["name"], "fc._weight_quantizer");
  EXPECT_EQ(json["quantizers"][0]["calibrator"], "max");
  EXPECT_EQ(json["quantizers"][0]["axis"], 0);
  EXPECT_EQ(json["quantizers"][0]["elements"], 40);
  EXPECT_EQ(json["default_input"]["axis"], nullptr);
  EXPECT_EQ(json["quantizers"][0]["amax_size"], 0);
  EXPECT_EQ(json["quantizers"][0]["format"], "int");
  info.mutable_default_input()->set_format(v1::QUANT_FORMAT_FP8_E4M3);
  EXPECT_EQ(ModelInfoJson(info)["default_input"]["format"], "fp8_e4m3");
  EXPECT_NE(FormatModelInfo(info).find("default input   default, FP8 E4M3, per-tensor"),
            std::string::npos)
      << FormatModelInfo(info);
  EXPECT_TRUE(json["onnx_bindings"].empty());
}

TEST(FormatTest, ModelInfoShowsBinsChannelsAndBindings) {
  v1::ModelInfo info;
  info.set_name("m");
  v1::QuantizerStats* input = info.add_quantizers();
  input->mutable_spec()->set_name("conv1._input_quantizer");
  input->mutable_spec()->set_calibrator(v1::CALIBRATOR_HISTOGRAM);
  input->mutable_spec()->set_num_bits(8);
  input->mutable_spec()->set_num_bins(2048);
  input->set_bins(2233);
  v1::QuantizerStats* weight = info.add_quantizers();
  weight->mutable_spec()->set_name("conv1._weight_quantizer");
  weight->mutable_spec()->set_calibrator(v1::CALIBRATOR_MAX);
  weight->mutable_spec()->set_num_bits(8);
  weight->mutable_spec()->set_axis(0);
  weight->set_amax_size(16);
  std::string text = FormatModelInfo(info);
  EXPECT_NE(text.find("BINS (START->NOW)"), std::string::npos) << text;
  EXPECT_NE(text.find("2048 -> 2233"), std::string::npos) << text;
  EXPECT_NE(text.find("bindings        none (no ONNX model uploaded)"), std::string::npos) << text;
  const nlohmann::json json = ModelInfoJson(info);
  EXPECT_EQ(json["quantizers"][0]["num_bins"], 2048);
  EXPECT_EQ(json["quantizers"][0]["bins"], 2233);
  EXPECT_EQ(json["quantizers"][1]["amax_size"], 16);

  info.set_has_onnx(true);
  (*info.mutable_onnx_bindings())["conv1._weight_quantizer"] = "conv1.weight";
  (*info.mutable_onnx_bindings())["conv1._input_quantizer"] = "input";
  text = FormatModelInfo(info);
  EXPECT_NE(text.find("bindings        2 (quantizer -> ONNX tensor"), std::string::npos) << text;
  // In name order.
  const size_t input_line = text.find("  conv1._input_quantizer                   -> input\n");
  const size_t weight_line =
      text.find("  conv1._weight_quantizer                  -> conv1.weight\n");
  EXPECT_NE(input_line, std::string::npos) << text;
  EXPECT_NE(weight_line, std::string::npos) << text;
  EXPECT_LT(input_line, weight_line);
  EXPECT_EQ(ModelInfoJson(info)["onnx_bindings"]["conv1._input_quantizer"], "input");
}

TEST(FormatTest, ModelInfoShowsTheHistogramLayout) {
  v1::ModelInfo info;
  info.set_name("m");
  info.set_histogram_layout(v1::HISTOGRAM_LAYOUT_REFERENCE);
  EXPECT_NE(FormatModelInfo(info).find("\nhistograms      reference layout\n"), std::string::npos)
      << FormatModelInfo(info);
  EXPECT_EQ(ModelInfoJson(info)["histogram_layout"], "reference");
  info.set_histogram_layout(v1::HISTOGRAM_LAYOUT_MERGEABLE);
  EXPECT_NE(FormatModelInfo(info).find("\nhistograms      mergeable layout\n"), std::string::npos)
      << FormatModelInfo(info);
  EXPECT_EQ(ModelsJson({info})[0]["histogram_layout"], "mergeable");
  // A server from before layouts sends none.
  info.clear_histogram_layout();
  EXPECT_EQ(ModelInfoJson(info)["histogram_layout"], "unspecified");
}

TEST(FormatTest, ExplainTableAlignsColumnsAndEndsWithTheReason) {
  const std::vector<ExplainEntry> entries = {{.node = "/layer1/layer1.0/Add",
                                              .op_type = "Add",
                                              .input = 1,
                                              .tensor = "x",
                                              .decision = "quantized",
                                              .quantizer = "layer1.0.residual_quantizer",
                                              .rule = "residual add shortcut",
                                              .reason = "per-tensor int8, amax 3"},
                                             {.node = "/c/Conv",
                                              .op_type = "Conv",
                                              .input = 0,
                                              .tensor = "y",
                                              .decision = "skipped",
                                              .quantizer = "",
                                              .rule = "weighted-op input",
                                              .reason = "no quantizer recorded"}};
  EXPECT_EQ(FormatExplain(entries),
            "NODE                  OP    IN  TENSOR  DECISION   RULE                   QUANTIZER  "
            "                  REASON\n"
            "/layer1/layer1.0/Add  Add   1   x       quantized  residual add shortcut  "
            "layer1.0.residual_quantizer  per-tensor int8, amax 3\n"
            "/c/Conv               Conv  0   y       skipped    weighted-op input      -        "
            "                    no quantizer recorded\n");
  EXPECT_EQ(FormatExplain({}), "explain: the export considered no node input\n");
}

}  // namespace
}  // namespace qcal::cli
