#include "kernels/bin_indices.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Result {
  std::vector<uint32_t> slots;
  BinIndexStats stats;
};

Result Portable(const std::vector<float>& x, const BinIndexLayout& layout) {
  Result r{std::vector<uint32_t>(x.size()), {}};
  ComputeBinIndicesPortable(x.data(), static_cast<int>(x.size()), layout, r.slots.data(), &r.stats);
  return r;
}

TEST(BinIndicesTest, PortableSlotsFollowTheReferenceFormula) {
  // 2048 bins over [0, 2], two copies 2056 slots apart: even lanes copy 0, odd lanes copy 1.
  const BinIndexLayout layout = BinIndexLayout::For(2.0f, 2048, 2056, 2);
  // |x| = 0.5 -> bin 512; 0.7 -> float(0.7 / 2) * 2048 = 716.8 -> 716; 2 -> 2048 -> 2047;
  // 3 (beyond the range) -> 2047; zeros, NaN and inf -> the lane's discard slot 2048 + lane.
  const std::vector<float> x = {0.5f, -0.7f, 2.0f, 3.0f, 0.0f, -0.0f, kNaN, -kInf, 0.7f};
  const Result r = Portable(x, layout);
  const std::vector<uint32_t> want = {
      512, 2056 + 716, 2047, 2056 + 2047, 2052, 2056 + 2048 + 5, 2054, 2056 + 2048 + 7, 716};
  EXPECT_EQ(r.slots, want);
  EXPECT_EQ(r.stats.max_bits, std::bit_cast<uint32_t>(3.0f));
  EXPECT_EQ(r.stats.finite, 7u);
}

TEST(BinIndicesTest, StatsAccumulateAcrossCalls) {
  const BinIndexLayout layout = BinIndexLayout::For(1.0f, 4, 12, 1);
  BinIndexStats stats{.max_bits = std::bit_cast<uint32_t>(5.0f), .finite = 10};
  std::vector<uint32_t> slots(3);
  const std::vector<float> x = {1.0f, kInf, 0.25f};
  ComputeBinIndicesPortable(x.data(), 3, layout, slots.data(), &stats);
  EXPECT_EQ(stats.max_bits, std::bit_cast<uint32_t>(5.0f));
  EXPECT_EQ(stats.finite, 12u);
  EXPECT_EQ(slots, (std::vector<uint32_t>{3, 4 + 1, 1}));
}

// Values that exercise every branch of the formula around a range: zeros of both signs,
// subnormals, the range itself and its neighbours, beyond it, huge, NaN (both signs, signalling
// payloads) and infinities.
std::vector<float> EdgeValues(float range_max) {
  const float denorm_min = std::numeric_limits<float>::denorm_min();
  const float lowest_normal = std::numeric_limits<float>::min();
  const float max = std::numeric_limits<float>::max();
  std::vector<float> v = {0.0f,
                          -0.0f,
                          denorm_min,
                          -denorm_min,
                          lowest_normal - denorm_min,
                          lowest_normal,
                          range_max,
                          -range_max,
                          std::nextafter(range_max, 0.0f),
                          std::nextafter(range_max, kInf),
                          range_max * 2.0f,
                          range_max * 1e30f,
                          max,
                          -max,
                          kInf,
                          -kInf,
                          kNaN,
                          -kNaN,
                          std::bit_cast<float>(0x7f800001u),  // signalling NaN
                          std::bit_cast<float>(0xffc12345u)};
  return v;
}

class BinIndicesAvx2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    const BinIndexLayout layout = BinIndexLayout::For(1.0f, 8, 16, 1);
    const float x = 0.5f;
    uint32_t slot = 0;
    BinIndexStats stats;
    if (!ComputeBinIndicesAvx2(&x, 1, layout, &slot, &stats)) {
      GTEST_SKIP() << "no AVX2 on this CPU or in this build";
    }
  }

  // Both implementations on `x`, compared slot by slot and in the stats.
  static void ExpectSame(const std::vector<float>& x, const BinIndexLayout& layout) {
    const Result want = Portable(x, layout);
    Result got{std::vector<uint32_t>(x.size()), {}};
    ASSERT_TRUE(ComputeBinIndicesAvx2(x.data(), static_cast<int>(x.size()), layout,
                                      got.slots.data(), &got.stats));
    ASSERT_EQ(got.stats.max_bits, want.stats.max_bits);
    ASSERT_EQ(got.stats.finite, want.stats.finite);
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(got.slots[i], want.slots[i])
          << "x[" << i << "] = " << x[i] << " (bits " << std::hex << std::bit_cast<uint32_t>(x[i])
          << std::dec << "), range_max " << layout.range_max << ", bins " << layout.bins_f;
    }
  }
};

TEST_F(BinIndicesAvx2Test, AgreesWithPortableOnEdgeValuesAndEveryTailLength) {
  for (const float range_max : {1.0f, 2.0f, 0.1f, 5.6f, 1e-38f, 3e38f}) {
    for (const int64_t bins : std::vector<int64_t>{1, 2, 3, 2048, 8192, 16385, int64_t{1} << 24}) {
      const int copies = bins <= (1 << 14) ? 2 : 1;
      const BinIndexLayout layout =
          BinIndexLayout::For(range_max, bins, static_cast<uint32_t>(bins + kBinLanes), copies);
      const std::vector<float> edges = EdgeValues(range_max);
      // Every edge value in every lane, and calls of every length 0 .. 2 * lanes + 1.
      std::vector<float> x;
      for (int shift = 0; shift < kBinLanes; ++shift) {
        for (int k = 0; k < shift; ++k) x.push_back(0.25f * range_max);
        x.insert(x.end(), edges.begin(), edges.end());
      }
      ExpectSame(x, layout);
      for (size_t length = 0; length <= 2 * kBinLanes + 1; ++length) {
        ExpectSame(std::vector<float>(x.begin(), x.begin() + length), layout);
      }
    }
  }
}

TEST_F(BinIndicesAvx2Test, AgreesWithPortableOnRandomValues) {
  std::mt19937 engine(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<float> x(100003);
  for (float& v : x) {
    const int p = pick(engine);
    if (p < 70) {
      v = normal(engine);
    } else if (p < 85) {
      v = std::bit_cast<float>(bits(engine));  // any pattern: NaNs, infinities, subnormals
    } else if (p < 90) {
      v = 0.0f;
    } else if (p < 93) {
      v = kNaN;
    } else if (p < 95) {
      v = -kInf;
    } else {
      v = 4.0f * normal(engine);  // beyond the range below
    }
  }
  for (const int64_t bins : std::vector<int64_t>{2048, 3000, 20000}) {
    const int copies = bins <= (1 << 14) ? 2 : 1;
    ExpectSame(x, BinIndexLayout::For(3.5f, bins, static_cast<uint32_t>(bins + kBinLanes), copies));
  }
}

TEST_F(BinIndicesAvx2Test, DispatchUsesTheSameSlots) {
  const std::vector<float> x = EdgeValues(2.0f);
  const BinIndexLayout layout = BinIndexLayout::For(2.0f, 2048, 2056, 2);
  const Result want = Portable(x, layout);
  Result got{std::vector<uint32_t>(x.size()), {}};
  ComputeBinIndices(x.data(), static_cast<int>(x.size()), layout, got.slots.data(), &got.stats);
  EXPECT_EQ(got.slots, want.slots);
  EXPECT_EQ(got.stats.max_bits, want.stats.max_bits);
  EXPECT_EQ(got.stats.finite, want.stats.finite);
}

}  // namespace
}  // namespace qcal::kernels
