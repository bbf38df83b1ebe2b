#include "quant/python_format.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace qcal::quant::internal {
namespace {

TEST(PyFloatRepr, MatchesPython) {
  EXPECT_EQ(PyFloatRepr(1.0), "1.0");
  EXPECT_EQ(PyFloatRepr(0.5), "0.5");
  EXPECT_EQ(PyFloatRepr(-0.0), "-0.0");
  // repr(float(np.float32(48.10606))) and repr(float(np.float32(8.469092))).
  EXPECT_EQ(PyFloatRepr(static_cast<double>(48.10606f)), "48.10606002807617");
  EXPECT_EQ(PyFloatRepr(static_cast<double>(8.469092f)), "8.46909236907959");
  EXPECT_EQ(PyFloatRepr(1e-5), "1e-05");
  EXPECT_EQ(PyFloatRepr(0.0001), "0.0001");
  EXPECT_EQ(PyFloatRepr(1e16), "1e+16");
  EXPECT_EQ(PyFloatRepr(123456789012345.0), "123456789012345.0");
  EXPECT_EQ(PyFloatRepr(1.5e-7), "1.5e-07");
  EXPECT_EQ(PyFloatRepr(std::numeric_limits<double>::quiet_NaN()), "nan");
  EXPECT_EQ(PyFloatRepr(-std::numeric_limits<double>::infinity()), "-inf");
}

TEST(PyFixed, FourDecimalsAndNonFinite) {
  EXPECT_EQ(PyFixed(2.64, 4), "2.6400");
  EXPECT_EQ(PyFixed(8.0911, 3), "8.091");
  EXPECT_EQ(PyFixed(-std::nan(""), 4), "nan");
  EXPECT_EQ(PyFixed(std::numeric_limits<double>::infinity(), 4), "inf");
  EXPECT_EQ(PyScientific(15.04078, 4), "1.5041e+01");
}

TEST(NumpyFloat32Str, ScalarsAndVectors) {
  const std::vector<int64_t> scalar = {};
  const std::vector<float> two = {2.0f};
  EXPECT_EQ(NumpyFloat32Str(two, scalar), "2.0");
  const std::vector<float> amax = {2.64f};
  EXPECT_EQ(NumpyFloat32Str(amax, scalar), "2.64");
  const std::vector<int64_t> shape2 = {2};
  const std::vector<float> ints = {1.0f, 2.0f};
  EXPECT_EQ(NumpyFloat32Str(ints, shape2), "[1. 2.]");
  const std::vector<float> mixed = {1.5f, 2.0f};
  EXPECT_EQ(NumpyFloat32Str(mixed, shape2), "[1.5 2. ]");
  const std::vector<float> widths = {1.5f, 10.0f};
  EXPECT_EQ(NumpyFloat32Str(widths, shape2), "[ 1.5 10. ]");
  const std::vector<float> small = {1e-5f, 1.0f};
  EXPECT_EQ(NumpyFloat32Str(small, shape2), "[1.e-05 1.e+00]");
  const std::vector<int64_t> shape22 = {2, 2};
  const std::vector<float> matrix = {1.0f, 2.0f, 3.0f, 4.0f};
  EXPECT_EQ(NumpyFloat32Str(matrix, shape22), "[[1. 2.]\n [3. 4.]]");
}

}  // namespace
}  // namespace qcal::quant::internal
