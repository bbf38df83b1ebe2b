#include "kernels/dtype.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

std::vector<float> Decode16(DType dtype, const std::vector<uint16_t>& values) {
  std::vector<uint8_t> bytes;
  for (const uint16_t v : values) {
    bytes.push_back(static_cast<uint8_t>(v & 0xff));  // little-endian
    bytes.push_back(static_cast<uint8_t>(v >> 8));
  }
  std::vector<float> out(values.size());
  DecodeToFloat32(dtype, bytes.data(), values.size(), out.data());
  return out;
}

std::vector<float> Decode64(const std::vector<double>& values) {
  std::vector<uint8_t> bytes(values.size() * 8);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint64_t bits = std::bit_cast<uint64_t>(values[i]);
    for (int b = 0; b < 8; ++b) bytes[i * 8 + b] = static_cast<uint8_t>(bits >> (8 * b));
  }
  std::vector<float> out(values.size());
  DecodeToFloat32(DType::kFloat64, bytes.data(), values.size(), out.data());
  return out;
}

uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4u);
  EXPECT_EQ(DTypeSize(DType::kFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kBFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kFloat64), 8u);
  EXPECT_EQ(DTypeName(DType::kFloat32), "float32");
  EXPECT_EQ(DTypeName(DType::kFloat16), "float16");
  EXPECT_EQ(DTypeName(DType::kBFloat16), "bfloat16");
  EXPECT_EQ(DTypeName(DType::kFloat64), "float64");
}

TEST(DTypeTest, Float32IsLittleEndianBytes) {
  const uint8_t bytes[] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0xc0, 0xff};  // 1.0, -NaN
  float out[2];
  DecodeToFloat32(DType::kFloat32, bytes, 2, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(Bits(out[1]), 0xffc00000u);
}

TEST(DTypeTest, Float16NormalsSubnormalsInfNan) {
  const std::vector<float> out =
      Decode16(DType::kFloat16, {0x3c00, 0xc000, 0x3555, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x8001,
                                 0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7c01});
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 0.333251953125f);     // 0x3555
  EXPECT_EQ(out[3], 65504.0f);            // largest half
  EXPECT_EQ(out[4], 0x1p-14f);            // smallest normal
  EXPECT_EQ(out[5], 0x1p-24f);            // smallest subnormal
  EXPECT_EQ(out[6], 1023.0f * 0x1p-24f);  // largest subnormal
  EXPECT_EQ(out[7], -0x1p-24f);
  EXPECT_EQ(Bits(out[8]), 0x00000000u);
  EXPECT_EQ(Bits(out[9]), 0x80000000u);  // -0.0 keeps its sign
  EXPECT_EQ(out[10], std::numeric_limits<float>::infinity());
  EXPECT_EQ(out[11], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(out[12]));
  EXPECT_TRUE(std::isnan(out[13]));  // signalling payload stays NaN
}

TEST(DTypeTest, BFloat16IsTheHighHalfOfFloat32) {
  const std::vector<float> out =
      Decode16(DType::kBFloat16, {0x3f80, 0xc049, 0x0001, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x7f7f});
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.140625f);
  EXPECT_EQ(Bits(out[2]), 0x00010000u);  // a float32 subnormal
  EXPECT_EQ(Bits(out[3]), 0x80000000u);
  EXPECT_EQ(out[4], std::numeric_limits<float>::infinity());
  EXPECT_EQ(out[5], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(out[6]));
  EXPECT_EQ(Bits(out[7]), 0x7f7f0000u);
}

TEST(DTypeTest, Float64RoundsToNearestEvenAndOverflowsToInf) {
  const std::vector<float> out =
      Decode64({1.0, -0.0, 1.0 + 0x1p-24, 1.0 + 0x1p-24 + 0x1p-52, 1e300, -1e300, 1e-40, 5e-324,
                std::numeric_limits<double>::quiet_NaN(), 3.4028234663852886e38, 0.1});
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(Bits(out[1]), 0x80000000u);
  EXPECT_EQ(out[2], 1.0f);             // a tie rounds to even
  EXPECT_EQ(out[3], 1.0f + 0x1p-23f);  // just above the tie rounds up
  EXPECT_EQ(out[4], std::numeric_limits<float>::infinity());
  EXPECT_EQ(out[5], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(Bits(out[6]), 0x000116c2u);  // 1e-40, a float32 subnormal
  EXPECT_EQ(Bits(out[7]), 0x00000000u);  // below float32's range
  EXPECT_TRUE(std::isnan(out[8]));
  EXPECT_EQ(out[9], std::numeric_limits<float>::max());
  EXPECT_EQ(out[10], 0.1f);
}

TEST(DTypeTest, LargeBuffersDecodeLikeSmallOnes) {
  // Above the parallel grain the work is split; every element must still decode alike.
  std::vector<uint16_t> halves(600000);
  for (size_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<uint16_t>(i * 2654435761u);
  const std::vector<float> all = Decode16(DType::kFloat16, halves);
  for (size_t i = 0; i < halves.size(); i += 9973) {
    const std::vector<float> one = Decode16(DType::kFloat16, {halves[i]});
    EXPECT_EQ(Bits(all[i]), Bits(one[0])) << i;
  }
}

}  // namespace
}  // namespace qcal::kernels
