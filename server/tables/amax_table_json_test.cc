#include "server/tables/amax_table_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace qcal::server {
namespace {

AmaxTable HandMadeTable() {
  AmaxTable table{.model = "net", .method = "entropy", .quantizers = {}};
  table.quantizers["conv1._input_quantizer"] = {.name = "conv1._input_quantizer",
                                                .amax = {2.64f},
                                                .axis = std::nullopt,
                                                .num_bits = 8,
                                                .is_unsigned = false,
                                                .method = "entropy",
                                                .batches = 2,
                                                .elements = 123,
                                                .nonfinite = 1,
                                                .format = kernels::QuantFormat::kFp8E4M3};
  table.quantizers["conv1._weight_quantizer"] = {.name = "conv1._weight_quantizer",
                                                 .amax = {0.78f, 0.5f},
                                                 .axis = 0,
                                                 .num_bits = 4,
                                                 .is_unsigned = true,
                                                 .method = "max",
                                                 .batches = 1,
                                                 .elements = 18,
                                                 .nonfinite = 0};
  return table;
}

TEST(AmaxTableJsonTest, ExactText) {
  EXPECT_EQ(AmaxTableToJson(HandMadeTable()), R"({
  "model": "net",
  "method": "entropy",
  "quantizers": {
    "conv1._input_quantizer": {
      "amax": 2.64,
      "num_bits": 8,
      "unsigned": false,
      "axis": null,
      "method": "entropy",
      "batches": 2,
      "elements": 123,
      "nonfinite": 1,
      "format": "fp8_e4m3"
    },
    "conv1._weight_quantizer": {
      "amax": [
        0.78,
        0.5
      ],
      "num_bits": 4,
      "unsigned": true,
      "axis": 0,
      "method": "max",
      "batches": 1,
      "elements": 18,
      "nonfinite": 0,
      "format": "int"
    }
  }
})");
}

TEST(AmaxTableJsonTest, AmaxReadsBackAsTheSameFloat32) {
  AmaxTable table{.model = "m", .method = "max", .quantizers = {}};
  const std::vector<float> amax = {0.1f, 1.0f / 3.0f, 3.4028235e38f, 1.17549435e-38f, 0.0f};
  table.quantizers["x._weight_quantizer"] = {
      .name = "x._weight_quantizer", .amax = amax, .axis = 1, .method = "max"};
  const nlohmann::json parsed = nlohmann::json::parse(AmaxTableToJson(table));
  const nlohmann::json& values = parsed["quantizers"]["x._weight_quantizer"]["amax"];
  ASSERT_EQ(values.size(), amax.size());
  for (size_t i = 0; i < amax.size(); ++i) {
    EXPECT_EQ(static_cast<float>(values[i].get<double>()), amax[i]) << i;
  }
}

TEST(AmaxTableJsonTest, EmptyTable) {
  EXPECT_EQ(AmaxTableToJson({.model = "m", .method = "mse", .quantizers = {}}),
            "{\n  \"model\": \"m\",\n  \"method\": \"mse\",\n  \"quantizers\": {}\n}");
}

}  // namespace
}  // namespace qcal::server
