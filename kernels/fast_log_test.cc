#include "kernels/fast_log.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

// |FastLog(x) - ln x| in units of 2^-52 * max(1, |ln x|): near x = 1 the log is small and its
// absolute error is what the entropy sums see.
double ErrorUnits(double x) {
  Double4 v = {x, x, x, x};
  FastLogInPlace(v);
  const double want = std::log(x);
  return std::fabs(v[0] - want) / (0x1p-52 * std::max(1.0, std::fabs(want)));
}

TEST(FastLogTest, ExactWhereTheLogIsExact) {
  Double4 v = {1.0, 1.0, 1.0, 1.0};
  FastLogInPlace(v);
  EXPECT_EQ(v[0], 0.0);
  Double4 e = {std::exp(1.0), 2.0, 4.0, 0.5};
  FastLogInPlace(e);
  EXPECT_NEAR(e[0], 1.0, 2e-16);
  EXPECT_NEAR(e[1], std::log(2.0), 2e-16);
  EXPECT_NEAR(e[2], std::log(4.0), 4e-16);
  EXPECT_NEAR(e[3], -std::log(2.0), 2e-16);
}

TEST(FastLogTest, WithinTwoUnitsOnCountsAndRatios) {
  // What the entropy search takes logs of: integer counts (up to 2^53) and their ratios.
  double worst = 0.0;
  for (int64_t n = 1; n <= 100000; ++n) worst = std::max(worst, ErrorUnits(static_cast<double>(n)));
  std::mt19937_64 engine(3);
  std::uniform_real_distribution<double> exponent(-60.0, 60.0);
  std::uniform_real_distribution<double> near_one(0.5, 2.0);
  for (int k = 0; k < 200000; ++k) {
    worst = std::max(worst, ErrorUnits(std::exp2(exponent(engine))));
    worst = std::max(worst, ErrorUnits(near_one(engine)));
    worst = std::max(worst, ErrorUnits(std::floor(std::exp2(exponent(engine) * 0.88 + 53))));
  }
  // The edges of the reduction to [sqrt(1/2), sqrt(2)).
  for (const double x :
       {std::sqrt(2.0), std::nextafter(std::sqrt(2.0), 0.0), std::nextafter(std::sqrt(2.0), 2.0),
        std::sqrt(0.5), 0x1p52, 0x1p53 - 1, std::nextafter(1.0, 2.0), std::nextafter(1.0, 0.0)}) {
    worst = std::max(worst, ErrorUnits(x));
  }
  EXPECT_LE(worst, 2.0);
}

}  // namespace
}  // namespace qcal::kernels
