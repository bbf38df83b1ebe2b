#include "kernels/fp8_e4m3.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

namespace qcal::kernels {
namespace {

uint32_t BitsOf(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

float FloatOf(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}

// The non-negative finite E4M3FN values in code order (codes 0x00..0x7e), from the OCP
// definition: exponent field e, mantissa m; e == 0: m 2^-9, else (1 + m/8) 2^(e-7).
std::vector<double> ReferenceValues() {
  std::vector<double> v;
  for (int code = 0; code <= 0x7e; ++code) {
    const int e = code >> 3;
    const int m = code & 7;
    v.push_back(e == 0 ? std::ldexp(m, -9) : std::ldexp(1.0 + m / 8.0, e - 7));
  }
  return v;
}

TEST(Fp8E4M3Test, ValuesOfEveryByteFollowTheOcpTable) {
  const std::vector<double> ref = ReferenceValues();
  EXPECT_EQ(ref.back(), 448.0);
  EXPECT_EQ(ref[1], std::ldexp(1.0, -9));
  for (int b = 0; b < 256; ++b) {
    const float v = Fp8E4M3Value(static_cast<uint8_t>(b));
    if ((b & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(v)) << b;
      EXPECT_EQ(std::signbit(v), b >= 0x80) << b;
      EXPECT_EQ(Fp8E4M3Byte(v), b);
      continue;
    }
    const double expected = (b & 0x80) ? -ref[b & 0x7f] : ref[b & 0x7f];
    EXPECT_EQ(static_cast<double>(v), expected) << b;
    EXPECT_EQ(std::signbit(v), b >= 0x80) << b;  // 0x80 is -0
    EXPECT_EQ(BitsOf(RoundToFp8E4M3(v)), BitsOf(v)) << b;
    EXPECT_EQ(Fp8E4M3Byte(v), b) << b;
  }
}

TEST(Fp8E4M3Test, NamedCases) {
  struct Case {
    float x;
    float expected;
  };
  const Case cases[] = {
      {0.0f, 0.0f},
      {1.0f, 1.0f},
      {1.0625f, 1.0f},   // tie between 1 and 1.125: even mantissa 0
      {1.1875f, 1.25f},  // tie between 1.125 and 1.25: even mantissa 2
      {1.0625001f, 1.125f},
      {15.5f, 16.0f},  // tie between 15 (m=7) and 16 (m=0 next binade): even is 16
      {240.0f, 240.0f},
      {432.0f, 448.0f},  // tie between 416 (m=5) and 448 (m=6)
      {447.9f, 448.0f},
      {448.0f, 448.0f},
      {464.0f, 448.0f},  // would be the tie with 480, which E4M3FN lacks: saturates
      {1e6f, 448.0f},
      {std::numeric_limits<float>::infinity(), 448.0f},
      {-std::numeric_limits<float>::infinity(), -448.0f},
      {-500.0f, -448.0f},
      {0x1p-6f, 0x1p-6f},    // smallest normal
      {0x1.ep-7f, 0x1p-6f},  // 7.5 units of 2^-9: tie, even is 8 = 2^-6
      {0x1p-9f, 0x1p-9f},    // smallest subnormal
      {0x1p-10f, 0.0f},      // tie between 0 and 2^-9: even is 0
      {0x1.000002p-10f, 0x1p-9f},
      {0x1.8p-9f, 0x1p-8f},  // 1.5 units: tie, even is 2 units
      {0x1.4p-8f, 0x1p-8f},  // 2.5 units: tie, even is 2
      {0x1.cp-8f, 0x1p-7f},  // 3.5 units: tie, even is 4
      {-0x1p-11f, -0.0f},
      {0x1p-149f, 0.0f},
      {-3.3f, -3.25f},
  };
  for (const Case& c : cases) {
    const float r = RoundToFp8E4M3(c.x);
    EXPECT_EQ(BitsOf(r), BitsOf(c.expected)) << c.x << " -> " << r << ", want " << c.expected;
  }
  const float negative_zero = RoundToFp8E4M3(-0.0f);
  EXPECT_EQ(negative_zero, 0.0f);
  EXPECT_TRUE(std::signbit(negative_zero));
  EXPECT_TRUE(std::isnan(RoundToFp8E4M3(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(RoundToFp8E4M3(-std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(Fp8E4M3Byte(448.0f), 0x7e);
  EXPECT_EQ(Fp8E4M3Byte(-448.0f), 0xfe);
  EXPECT_EQ(Fp8E4M3Byte(1e9f), 0x7e);
  EXPECT_EQ(Fp8E4M3Byte(-0.0f), 0x80);
  EXPECT_EQ(Fp8E4M3Byte(0x1p-9f), 0x01);
  EXPECT_EQ(Fp8E4M3Byte(1.0f), 0x38);
  EXPECT_EQ(Fp8E4M3Byte(std::numeric_limits<float>::quiet_NaN()), 0x7f);
}

// Every float32 bit pattern: the positive ones in increasing order against the reference table
// (the expected value steps up at each midpoint, a midpoint going to the even code), each
// negative one as the mirror of its positive, every NaN staying NaN. Split over threads by bit
// ranges; about 4.3e9 roundings.
TEST(Fp8E4M3Test, EveryFloat32RoundsToTheNearestValueTiesToEven) {
  const std::vector<double> ref = ReferenceValues();
  const uint32_t last_finite = 0x7f7fffffu;
  const int threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  std::atomic<uint64_t> failures{0};
  std::atomic<uint32_t> first_failure{0};
  // Midpoints between neighbouring codes, exact in float32 (at most 5 significant bits).
  std::vector<float> mids;
  for (size_t k = 0; k + 1 < ref.size(); ++k) {
    mids.push_back(static_cast<float>((ref[k] + ref[k + 1]) / 2));
    ASSERT_EQ(static_cast<double>(mids.back()), (ref[k] + ref[k + 1]) / 2);
  }
  auto run = [&](uint32_t begin, uint32_t end) {
    // The code k whose interval holds FloatOf(begin).
    size_t k = 0;
    const float start = FloatOf(begin);
    while (k < mids.size() && start > mids[k]) ++k;
    uint64_t local = 0;
    for (uint32_t u = begin; u < end; ++u) {
      const float x = FloatOf(u);
      // Move k up while x lies beyond the midpoint above it (a tie goes to the even code).
      while (k < mids.size()) {
        if (x > mids[k] || (x == mids[k] && (k & 1) == 1)) {
          ++k;
        } else {
          break;
        }
      }
      const float expected = static_cast<float>(ref[k]);
      const float r = RoundToFp8E4M3(x);
      const float rn = RoundToFp8E4M3(-x);
      if (BitsOf(r) != BitsOf(expected) || BitsOf(rn) != (BitsOf(expected) | 0x80000000u)) {
        if (local++ == 0) first_failure.store(u);
      }
    }
    failures += local;
  };
  std::vector<std::thread> pool;
  const uint64_t span = (uint64_t{last_finite} + 2 + threads - 1) / threads;  // through +inf
  for (int t = 0; t < threads; ++t) {
    const uint64_t begin = std::min<uint64_t>(t * span, uint64_t{last_finite} + 2);
    const uint64_t end = std::min<uint64_t>(begin + span, uint64_t{last_finite} + 2);
    pool.emplace_back(run, static_cast<uint32_t>(begin), static_cast<uint32_t>(end));
  }
  for (std::thread& t : pool) t.join();
  EXPECT_EQ(failures.load(), 0u) << "first failing bits 0x" << std::hex << first_failure.load();
  // +inf was the last pattern above (it saturates); NaNs: every payload, both signs.
  uint64_t nan_failures = 0;
  for (uint32_t u = 0x7f800001u; u != 0x80000000u; ++u) {
    const float r = RoundToFp8E4M3(FloatOf(u));
    const float rn = RoundToFp8E4M3(FloatOf(u | 0x80000000u));
    nan_failures += (!std::isnan(r) || !std::isnan(rn)) ? 1 : 0;
  }
  EXPECT_EQ(nan_failures, 0u);
}

}  // namespace
}  // namespace qcal::kernels
