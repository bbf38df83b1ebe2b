#include "qcal/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace qcal {
namespace {

TEST(TensorTest, DTypeSizesAndNamesRoundTrip) {
  EXPECT_EQ(DTypeSize(DType::kFloat32), 4u);
  EXPECT_EQ(DTypeSize(DType::kFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kBFloat16), 2u);
  EXPECT_EQ(DTypeSize(DType::kFloat64), 8u);
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
    absl::StatusOr<DType> parsed = ParseDType(DTypeName(dtype));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, dtype);
  }
  EXPECT_EQ(ToProto(DType::kBFloat16), v1::DTYPE_BFLOAT16);
}

TEST(TensorTest, ParseDTypeRefusesOthersNamingTheAcceptedOnes) {
  absl::StatusOr<DType> parsed = ParseDType("int8");
  ASSERT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("'int8'"), absl::string_view::npos);
  EXPECT_NE(parsed.status().message().find("bfloat16"), absl::string_view::npos);
}

TEST(TensorTest, TensorBytesIsElementsTimesItemSize) {
  const std::vector<int64_t> shape = {2, 3, 5};
  EXPECT_EQ(*TensorBytes(DType::kFloat16, shape), 60u);
  EXPECT_EQ(*TensorBytes(DType::kFloat64, {}), 8u);  // a scalar
  const std::vector<int64_t> empty = {4, 0, 7};
  EXPECT_EQ(*TensorBytes(DType::kFloat32, empty), 0u);
}

TEST(TensorTest, TensorBytesRefusesNegativeDimensionsAndOverflow) {
  const std::vector<int64_t> negative = {3, -1};
  EXPECT_EQ(TensorBytes(DType::kFloat32, negative).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<int64_t> huge = {int64_t{1} << 40, int64_t{1} << 40};
  EXPECT_EQ(TensorBytes(DType::kFloat32, huge).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qcal
