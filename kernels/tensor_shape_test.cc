#include "kernels/tensor_shape.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace qcal::kernels {
namespace {

TEST(ShapeStringTest, ShowsShortShapesInFull) {
  EXPECT_EQ(ShapeString(std::vector<int64_t>{}), "[]");
  EXPECT_EQ(ShapeString(std::vector<int64_t>{2, 3}), "[2, 3]");
  const std::vector<int64_t> sixteen(16, 1);
  EXPECT_EQ(ShapeString(sixteen), "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]");
}

// A shape from the wire may have any rank: a message carrying all of a rank-10^6 shape was
// megabytes, more than gRPC's metadata allows (the client saw RESOURCE_EXHAUSTED instead).
TEST(ShapeStringTest, ShortensLongShapesSayingHowManyMore) {
  std::vector<int64_t> seventeen(17, 2);
  seventeen[16] = 9;
  EXPECT_EQ(ShapeString(seventeen),
            "[2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, ... (1 more dimensions)]");
  const std::vector<int64_t> huge(1000000, 1);
  const std::string text = ShapeString(huge);
  EXPECT_LT(text.size(), 100u) << text;
  EXPECT_TRUE(text.starts_with("[1, 1, ")) << text;
  EXPECT_TRUE(text.ends_with(", 1, ... (999984 more dimensions)]")) << text;
}

TEST(ShapeStringTest, MessagesAboutLongShapesStayShort) {
  const std::vector<int64_t> huge(1000000, 1);
  const absl::Status status = CheckShape(2, huge, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(status.message().size(), 200u) << status.message();
}

}  // namespace
}  // namespace qcal::kernels
