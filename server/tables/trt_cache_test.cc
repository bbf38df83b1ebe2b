#include "server/tables/trt_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace qcal::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The cache text of a table that TrtCacheText must accept.
std::string Text(const AmaxTable& table,
                 const std::map<std::string, std::vector<std::string>>& tensors = {}) {
  const absl::StatusOr<TrtCache> cache = TrtCacheText(table, tensors);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? cache->text : "";
}

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
  // fc is unsigned: TensorRT reads it as signed INT8, scale amax / 127. proj is 4-bit: left out.
  const std::string expected =
      "TRT-8601-EntropyCalibration2\n"
      "conv1._input_quantizer: " +
      Hex(2.64f / 127.0f) + "\n" + "fc._input_quantizer: " + Hex(6.0f / 127.0f) + "\n" +
      "head._input_quantizer: " + Hex(1.0f) + "\n";
  EXPECT_EQ(Text(HandMadeTable()), expected);
  // Spot check the helper itself against a known pattern: 1.0f is 0x3f800000.
  EXPECT_EQ(Hex(1.0f), "3f800000");
}

TEST(TrtCacheTest, KeyedByOnnxTensorsLargestAmaxWins) {
  // conv1 and fc read the same tensor: fc's amax 6 (unsigned, written as signed) beats conv1's
  // 2.64. proj (4-bit) is left out, so it does not take part. Nothing is unbound.
  const std::map<std::string, std::vector<std::string>> tensors = {
      {"input", {"conv1._input_quantizer", "proj._input_quantizer"}},
      {"/Relu_output_0", {"head._input_quantizer", "missing._input_quantizer"}},
      {"/fc/Gemm_input", {"fc._input_quantizer"}}};
  const std::string expected =
      "TRT-8601-EntropyCalibration2\n"
      "/Relu_output_0: " +
      Hex(1.0f) + "\n" + "/fc/Gemm_input: " + Hex(6.0f / 127.0f) + "\n" +
      "input: " + Hex(2.64f / 127.0f) + "\n";
  EXPECT_EQ(Text(HandMadeTable(), tensors), expected);
}

// TensorRT's INT8 is signed: it reads every entry as scale x 127. An unsigned quantizer's range
// [0, amax] is kept only when its scale is amax / 127 (amax / 255 would make TensorRT see half
// the range).
TEST(TrtCacheTest, UnsignedQuantizersAreWrittenAsSignedInt8WithAWarning) {
  AmaxTable table{.model = "m", .method = "max", .quantizers = {}};
  table.quantizers["relu._input_quantizer"] =
      Entry("relu._input_quantizer", {3.9f}, 8, /*is_unsigned=*/true);
  const absl::StatusOr<TrtCache> cache =
      TrtCacheText(table, {{"/relu/Relu_output_0", {"relu._input_quantizer"}}});
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->text,
            "TRT-8601-EntropyCalibration2\n/relu/Relu_output_0: " + Hex(3.9f / 127.0f) + "\n");
  EXPECT_THAT(cache->warnings,
              ElementsAre("TensorRT calibration cache: quantizer 'relu._input_quantizer' tensor "
                          "'/relu/Relu_output_0' is unsigned; TensorRT's INT8 is signed, so it is "
                          "written as signed INT8 (scale amax / 127, amax 3.9)"));
}

TEST(TrtCacheTest, QuantizersThatAreNot8BitAreLeftOutWithAWarning) {
  AmaxTable table{.model = "m", .method = "max", .quantizers = {}};
  for (QuantizerAmax entry :
       {Entry("a._input_quantizer", {1.0f}, 4), Entry("b._input_quantizer", {2.0f}, 16),
        Entry("c._input_quantizer", {3.0f}, 8)}) {
    table.quantizers[entry.name] = entry;
  }
  const absl::StatusOr<TrtCache> cache = TrtCacheText(table, {{"t", {"b._input_quantizer"}}});
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->text,
            "TRT-8601-EntropyCalibration2\nc._input_quantizer: " + Hex(3.0f / 127.0f) + "\n");
  EXPECT_THAT(cache->warnings,
              ElementsAre("TensorRT calibration cache: quantizer 'b._input_quantizer' tensor 't' "
                          "is 16-bit; TensorRT's cache holds 8-bit integer quantizers only: left "
                          "out",
                          "TensorRT calibration cache: quantizer 'a._input_quantizer' tensor "
                          "'a._input_quantizer' is 4-bit; TensorRT's cache holds 8-bit integer "
                          "quantizers only: left out"));
}

// Issue 5's rule: the cache is INT8 only. An FP8 quantizer (amax maps to 448, not 127) is left
// out with a warning, also where it shares a tensor with an INT8 quantizer, which is written.
TEST(TrtCacheTest, Fp8QuantizersAreLeftOutWithAWarning) {
  AmaxTable table{.model = "m", .method = "max", .quantizers = {}};
  QuantizerAmax fp8 = Entry("a._input_quantizer", {9.0f});
  fp8.format = kernels::QuantFormat::kFp8E4M3;
  QuantizerAmax shared_fp8 = Entry("b._input_quantizer", {7.0f});
  shared_fp8.format = kernels::QuantFormat::kFp8E4M3;
  for (const QuantizerAmax& entry : {fp8, shared_fp8, Entry("c._input_quantizer", {3.0f})}) {
    table.quantizers[entry.name] = entry;
  }
  const absl::StatusOr<TrtCache> cache =
      TrtCacheText(table, {{"t", {"b._input_quantizer", "c._input_quantizer"}}});
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->text, "TRT-8601-EntropyCalibration2\nt: " + Hex(3.0f / 127.0f) + "\n");
  // One warning for all of them (an all-FP8 model would otherwise give one per quantizer).
  EXPECT_THAT(cache->warnings,
              ElementsAre("TensorRT calibration cache: 2 FP8 (fp8_e4m3) quantizers, quantizer "
                          "'b._input_quantizer' tensor 't', quantizer 'a._input_quantizer' tensor "
                          "'a._input_quantizer'; TensorRT's cache holds 8-bit integer quantizers "
                          "only: left out (export a QDQ ONNX model for FP8)"));
}

TEST(TrtCacheTest, OneFp8QuantizerIsNamedAndManyAreCounted) {
  AmaxTable one{.model = "m", .method = "max", .quantizers = {}};
  QuantizerAmax fp8 = Entry("a._input_quantizer", {9.0f});
  fp8.format = kernels::QuantFormat::kFp8E4M3;
  one.quantizers[fp8.name] = fp8;
  absl::StatusOr<TrtCache> cache = TrtCacheText(one, {});
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_THAT(cache->warnings,
              ElementsAre("TensorRT calibration cache: quantizer 'a._input_quantizer' tensor "
                          "'a._input_quantizer' is FP8 (fp8_e4m3); TensorRT's cache holds 8-bit "
                          "integer quantizers only: left out (export a QDQ ONNX model for FP8)"));

  AmaxTable many{.model = "m", .method = "max", .quantizers = {}};
  for (int i = 0; i < 31; ++i) {
    QuantizerAmax q = Entry(absl::StrCat("q", 10 + i, "._input_quantizer"), {1.0f});
    q.format = kernels::QuantFormat::kFp8E4M3;
    many.quantizers[q.name] = q;
  }
  cache = TrtCacheText(many, {});
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_EQ(cache->warnings.size(), 1u);
  EXPECT_THAT(cache->warnings[0], HasSubstr("31 FP8 (fp8_e4m3) quantizers, quantizer "
                                            "'q10._input_quantizer' tensor"));
  EXPECT_THAT(cache->warnings[0], HasSubstr("'q17._input_quantizer' and 23 more; TensorRT's"));
  EXPECT_EQ(cache->text, "TRT-8601-EntropyCalibration2\n");
}

// A cache line is "<name>: <hex>"; a name holding ": " could be read as another name and scale
// ("x: 3f800000: 3c010a14").
TEST(TrtCacheTest, NamesContainingColonSpaceAreLeftOutWithAWarning) {
  AmaxTable table{.model = "m", .method = "max", .quantizers = {}};
  for (QuantizerAmax entry : {Entry("x: 3f800000", {1.0f}), Entry("y: bound", {2.0f}),
                              Entry("ok:colon._input_quantizer", {3.0f})}) {
    table.quantizers[entry.name] = entry;
  }
  // "y: bound" is bound to a plain tensor: its line is keyed by the tensor, which is fine.
  // "bad: tensor" is a tensor name with ": ".
  table.quantizers["w._input_quantizer"] = Entry("w._input_quantizer", {4.0f});
  const absl::StatusOr<TrtCache> cache =
      TrtCacheText(table, {{"plain", {"y: bound"}}, {"bad: tensor", {"w._input_quantizer"}}});
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->text, "TRT-8601-EntropyCalibration2\nok:colon._input_quantizer: " +
                             Hex(3.0f / 127.0f) + "\nplain: " + Hex(2.0f / 127.0f) + "\n");
  EXPECT_THAT(
      cache->warnings,
      ElementsAre("TensorRT calibration cache: quantizer 'w._input_quantizer' tensor 'bad: "
                  "tensor' left out: the tensor name contains \": \", which would make its "
                  "cache line ambiguous",
                  "TensorRT calibration cache: quantizer 'x: 3f800000' tensor 'x: 3f800000' "
                  "left out: the quantizer name contains \": \", which would make its cache "
                  "line ambiguous"));
}

TEST(TrtCacheTest, PerChannelActivationTakesItsLargestChannel) {
  AmaxTable table{.model = "m", .method = "max", .quantizers = {}};
  table.quantizers["a._input_quantizer"] = {
      .name = "a._input_quantizer", .amax = {0.5f, 3.0f, 1.0f}, .axis = 1, .method = "max"};
  EXPECT_EQ(Text(table),
            "TRT-8601-EntropyCalibration2\na._input_quantizer: " + Hex(3.0f / 127.0f) + "\n");
}

// The cache writes the scales the QDQ export writes (ScalesFromAmax): never 0, never subnormal,
// each replacement warned about. Exact bits: 00800000 is FLT_MIN (1.17549435e-38), the smallest
// normal float32; 3f800000 is 1.
TEST(TrtCacheTest, ZeroAndSubnormalScalesBecomeWhatTheQdqExportWrites) {
  AmaxTable table{.model = "m", .method = "max", .quantizers = {}};
  for (QuantizerAmax entry :
       {Entry("tiny._input_quantizer", {1e-44f}), Entry("small._input_quantizer", {2e-38f}),
        Entry("zero._input_quantizer", {0.0f}), Entry("normal._input_quantizer", {1.5e-36f})}) {
    table.quantizers[entry.name] = entry;
  }
  const absl::StatusOr<TrtCache> cache = TrtCacheText(table, {});
  ASSERT_TRUE(cache.ok()) << cache.status();
  // 1.5e-36 / 127 = 1.1811e-38 is still normal (just above FLT_MIN), so it is written as it is.
  EXPECT_EQ(cache->text,
            "TRT-8601-EntropyCalibration2\n"
            "normal._input_quantizer: 00809c54\n"
            "small._input_quantizer: 00800000\n"
            "tiny._input_quantizer: 00800000\n"
            "zero._input_quantizer: 3f800000\n");
  EXPECT_EQ(Hex(1.5e-36f / 127.0f), "00809c54");
  EXPECT_THAT(
      cache->warnings,
      ElementsAre("TensorRT calibration cache: quantizer 'small._input_quantizer' tensor "
                  "'small._input_quantizer' (per-tensor): amax 2e-38 gives a scale below the "
                  "smallest normal float; scale written as 1.17549e-38",
                  "TensorRT calibration cache: quantizer 'tiny._input_quantizer' tensor "
                  "'tiny._input_quantizer' (per-tensor): amax 9.80909e-45 gives a scale below the "
                  "smallest normal float; scale written as 1.17549e-38",
                  "TensorRT calibration cache: quantizer 'zero._input_quantizer' tensor "
                  "'zero._input_quantizer' (per-tensor): amax is 0; scale written as 1"));
}

TEST(TrtCacheTest, NormalScalesGiveNoWarning) {
  AmaxTable table = HandMadeTable();
  table.quantizers.erase("fc._input_quantizer");    // unsigned
  table.quantizers.erase("proj._input_quantizer");  // 4-bit
  const absl::StatusOr<TrtCache> cache = TrtCacheText(table, {});
  ASSERT_TRUE(cache.ok()) << cache.status();
  // Only head's amax of 0.
  ASSERT_EQ(cache->warnings.size(), 1u);
  EXPECT_THAT(cache->warnings[0], HasSubstr("'head._input_quantizer'"));
}

TEST(TrtCacheTest, RefusesWhatNoComputeAmaxProduces) {
  AmaxTable table{.model = "m", .method = "max", .quantizers = {}};
  table.quantizers["a._input_quantizer"] = Entry("a._input_quantizer", {1.0f}, /*num_bits=*/40);
  EXPECT_EQ(TrtCacheText(table, {}).status().code(), absl::StatusCode::kInvalidArgument);
  table.quantizers["a._input_quantizer"] = Entry("a._input_quantizer", {-1.0f});
  EXPECT_EQ(TrtCacheText(table, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qcal::server
