#include "server/trt_cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace qcal::server {
namespace {

// The 8 lowercase hex digits of the float32 bits of `value`, computed independently of the code
// under test.
std::string Hex(float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  char text[16];
  std::snprintf(text, sizeof(text), "%08x", bits);
  return text;
}

QuantizerAmax Entry(const std::string& name, std::vector<float> amax, int num_bits = 8,
                    bool is_unsigned = false) {
  return {.name = name,
          .amax = std::move(amax),
          .axis = std::nullopt,
          .num_bits = num_bits,
          .is_unsigned = is_unsigned,
          .method = "entropy"};
}

AmaxTable HandMadeTable() {
  AmaxTable table{.model = "net", .method = "entropy", .quantizers = {}};
  for (QuantizerAmax entry :
       {Entry("conv1._input_quantizer", {2.64f}), Entry("conv1._weight_quantizer", {0.78f, 0.5f}),
        Entry("fc._input_quantizer", {6.0f}, 8, /*is_unsigned=*/true),
        Entry("head._input_quantizer", {0.0f}), Entry("proj._input_quantizer", {1.25f}, 4)}) {
    table.quantizers[entry.name] = entry;
  }
  return table;
}

TEST(TrtCacheTest, KeyedByQuantizerNameWithoutOnnx) {
  const std::string expected =
      "TRT-8601-EntropyCalibration2\n"
      "conv1._input_quantizer: " +
      Hex(2.64f / 127.0f) + "\n" + "fc._input_quantizer: " + Hex(6.0f / 255.0f) + "\n" +
      "head._input_quantizer: " + Hex(1.0f) + "\n" + "proj._input_quantizer: " + Hex(1.25f / 7.0f) +
      "\n";
  EXPECT_EQ(TrtCacheText(HandMadeTable(), {}), expected);
  // Spot check the helper itself against a known pattern: 1.0f is 0x3f800000.
  EXPECT_EQ(Hex(1.0f), "3f800000");
}

TEST(TrtCacheTest, KeyedByOnnxTensorsLargestAmaxWins) {
  // conv1 and proj read the same tensor: proj's amax 1.25 loses to conv1's 2.64 (its scale, with
  // its own bound, is what is written). fc is unbound and keeps its name.
  const std::map<std::string, std::vector<std::string>> tensors = {
      {"input", {"conv1._input_quantizer", "proj._input_quantizer"}},
      {"/Relu_output_0", {"head._input_quantizer", "missing._input_quantizer"}}};
  const std::string expected =
      "TRT-8601-EntropyCalibration2\n"
      "/Relu_output_0: " +
      Hex(1.0f) + "\n" + "fc._input_quantizer: " + Hex(6.0f / 255.0f) + "\n" +
      "input: " + Hex(2.64f / 127.0f) + "\n";
  EXPECT_EQ(TrtCacheText(HandMadeTable(), tensors), expected);
}

TEST(TrtCacheTest, PerChannelActivationTakesItsLargestChannel) {
  AmaxTable table{.model = "m", .method = "max", .quantizers = {}};
  table.quantizers["a._input_quantizer"] = {
      .name = "a._input_quantizer", .amax = {0.5f, 3.0f, 1.0f}, .axis = 1, .method = "max"};
  EXPECT_EQ(TrtCacheText(table, {}),
            "TRT-8601-EntropyCalibration2\na._input_quantizer: " + Hex(3.0f / 127.0f) + "\n");
}

}  // namespace
}  // namespace qcal::server
