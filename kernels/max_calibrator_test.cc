#include "kernels/max_calibrator.h"

#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

TEST(MaxCalibratorTest, PerTensorRunningMax) {
  MaxCalibrator calib(std::nullopt);
  EXPECT_TRUE(calib.empty());
  const std::vector<int64_t> shape = {2, 2};
  ASSERT_TRUE(calib.Collect(std::vector<float>{0.5f, -1.5f, 1.0f, 0.25f}, shape).ok());
  EXPECT_THAT(calib.amax(), ElementsAre(1.5f));
  ASSERT_TRUE(calib.Collect(std::vector<float>{-0.75f}, std::vector<int64_t>{1}).ok());
  EXPECT_THAT(calib.amax(), ElementsAre(1.5f));  // a smaller batch keeps the max
  ASSERT_TRUE(calib.Collect(std::vector<float>{3.0f}, std::vector<int64_t>{}).ok());  // scalar
  EXPECT_THAT(calib.amax(), ElementsAre(3.0f));
  EXPECT_TRUE(calib.channel_shape().empty());
  EXPECT_EQ(calib.axis(), std::nullopt);
}

TEST(MaxCalibratorTest, Axis0OfKcrsWeight) {
  // K=2, C=2, R=S=1: channel 0 holds {1, -4}, channel 1 holds {2, 0.5}.
  MaxCalibrator calib(0);
  const std::vector<int64_t> shape = {2, 2, 1, 1};
  ASSERT_TRUE(calib.Collect(std::vector<float>{1.0f, -4.0f, 2.0f, 0.5f}, shape).ok());
  EXPECT_THAT(calib.amax(), ElementsAre(4.0f, 2.0f));
  EXPECT_THAT(calib.channel_shape(), ElementsAre(2));
  ASSERT_TRUE(calib.Collect(std::vector<float>{0.0f, 1.0f, -2.0f, 9.0f}, shape).ok());
  EXPECT_THAT(calib.amax(), ElementsAre(4.0f, 9.0f));
}

TEST(MaxCalibratorTest, Axis1AndNegativeAxisKeepTheChannelDimension) {
  // [N=2, C=3]: columns are channels.
  const std::vector<float> x = {1.0f, -2.0f, 3.0f, -4.0f, 0.5f, 0.25f};
  const std::vector<int64_t> shape = {2, 3};
  MaxCalibrator axis1(1);
  MaxCalibrator last(-1);
  ASSERT_TRUE(axis1.Collect(x, shape).ok());
  ASSERT_TRUE(last.Collect(x, shape).ok());
  EXPECT_THAT(axis1.amax(), ElementsAre(4.0f, 2.0f, 3.0f));
  EXPECT_THAT(last.amax(), ElementsAre(4.0f, 2.0f, 3.0f));
  // The batch size may change; the channel count may not.
  ASSERT_TRUE(axis1.Collect(std::vector<float>{0.0f, 5.0f, 0.0f}, std::vector<int64_t>{1, 3}).ok());
  EXPECT_THAT(axis1.amax(), ElementsAre(4.0f, 5.0f, 3.0f));
}

TEST(MaxCalibratorTest, InnerAxisOf4dTensor) {
  // [N=2, C=2, H=1, W=2] with axis 1: channel c gathers x[n, c, 0, w].
  const std::vector<float> x = {1, 2, 3, 4, -5, 0, 6, -1};
  MaxCalibrator calib(1);
  ASSERT_TRUE(calib.Collect(x, std::vector<int64_t>{2, 2, 1, 2}).ok());
  EXPECT_THAT(calib.amax(), ElementsAre(5.0f, 6.0f));
}

TEST(MaxCalibratorTest, AxisTupleKeepsBothAxesRowMajor) {
  // [A=2, B=2, R=2], axes {0, 1}: channel a*2+b.
  const std::vector<float> x = {1, -2, 3, 0, 0.5, 0.25, -7, 6};
  MaxCalibrator calib(std::vector<int>{1, 0});  // order given does not matter
  ASSERT_TRUE(calib.Collect(x, std::vector<int64_t>{2, 2, 2}).ok());
  EXPECT_THAT(calib.amax(), ElementsAre(2.0f, 3.0f, 0.5f, 7.0f));
  EXPECT_THAT(calib.channel_shape(), ElementsAre(2, 2));
}

TEST(MaxCalibratorTest, NanAndInfAreCountedAndLeftOut) {
  MaxCalibrator per_tensor(std::nullopt);
  auto stats = per_tensor.Collect(std::vector<float>{1.0f, kNaN, -kInf, -2.0f, kInf},
                                  std::vector<int64_t>{5});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->elements, 5);
  EXPECT_EQ(stats->nonfinite, 3);
  EXPECT_THAT(per_tensor.amax(), ElementsAre(2.0f));

  MaxCalibrator per_channel(1);
  stats = per_channel.Collect(std::vector<float>{1.0f, kNaN, 2.0f, 0.5f, kInf, 0.0f},
                              std::vector<int64_t>{3, 2});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->nonfinite, 2);
  EXPECT_THAT(per_channel.amax(), ElementsAre(2.0f, 0.5f));
}

TEST(MaxCalibratorTest, ChannelWithOnlyNonFiniteOrZeroGetsZero) {
  MaxCalibrator calib(0);
  ASSERT_TRUE(calib
                  .Collect(std::vector<float>{kNaN, kInf, 0.0f, -0.0f, 3.0f, 1.0f},
                           std::vector<int64_t>{3, 2})
                  .ok());
  EXPECT_THAT(calib.amax(), ElementsAre(0.0f, 0.0f, 3.0f));
}

TEST(MaxCalibratorTest, BadBatchesAreRefusedAndChangeNothing) {
  MaxCalibrator calib(0);
  ASSERT_TRUE(calib.Collect(std::vector<float>{1.0f, 2.0f}, std::vector<int64_t>{2, 1}).ok());

  auto status = calib.Collect(std::vector<float>{9.0f, 9.0f, 9.0f}, std::vector<int64_t>{3, 1});
  EXPECT_EQ(status.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.status().message(), HasSubstr("differ from earlier batches"));

  status = calib.Collect(std::vector<float>{9.0f, 9.0f}, std::vector<int64_t>{3, 1});
  EXPECT_EQ(status.status().code(), absl::StatusCode::kInvalidArgument);  // size != shape

  status = calib.Collect({}, std::vector<int64_t>{0, 1});
  EXPECT_EQ(status.status().code(), absl::StatusCode::kInvalidArgument);  // empty

  status = calib.Collect(std::vector<float>{9.0f}, std::vector<int64_t>{-1, -1});
  EXPECT_EQ(status.status().code(), absl::StatusCode::kInvalidArgument);  // negative dims

  EXPECT_THAT(calib.amax(), ElementsAre(1.0f, 2.0f));
}

TEST(MaxCalibratorTest, AxisOutOfRangeIsRefused) {
  for (const int axis : {2, -3, 5}) {
    MaxCalibrator calib(axis);
    const auto stats =
        calib.Collect(std::vector<float>{1, 2, 3, 4, 5, 6}, std::vector<int64_t>{2, 3});
    EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument) << axis;
    EXPECT_THAT(stats.status().message(), HasSubstr("out of range")) << axis;
    EXPECT_TRUE(calib.empty());
  }
  MaxCalibrator scalar_axis(0);
  EXPECT_EQ(scalar_axis.Collect(std::vector<float>{1}, std::vector<int64_t>{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  MaxCalibrator repeated(std::vector<int>{1, -1});
  EXPECT_EQ(repeated.Collect(std::vector<float>{1, 2}, std::vector<int64_t>{1, 2}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MaxCalibratorTest, LargePerChannelBatchesSplitAcrossCores) {
  // 3 channels x 400000 values on axis 0, and the transposed layout on axis 1.
  const int64_t n = 400000;
  std::vector<float> rows(3 * n), cols(3 * n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c < 3; ++c) {
      const float v = static_cast<float>((i * 7 + c * 13) % 1000) / 1000.0f;
      rows[c * n + i] = v;
      cols[i * 3 + c] = v;
    }
  }
  rows[0 * n + 123457] = -11.0f;
  cols[123457 * 3 + 0] = -11.0f;
  rows[2 * n + n - 1] = 22.0f;
  cols[(n - 1) * 3 + 2] = 22.0f;
  rows[1 * n + 5] = kNaN;
  cols[5 * 3 + 1] = kNaN;
  MaxCalibrator by_rows(0);
  MaxCalibrator by_cols(1);
  const auto a = by_rows.Collect(rows, std::vector<int64_t>{3, n});
  const auto b = by_cols.Collect(cols, std::vector<int64_t>{n, 3});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->nonfinite, 1);
  EXPECT_EQ(b->nonfinite, 1);
  EXPECT_THAT(by_rows.amax(), ElementsAre(11.0f, 0.999f, 22.0f));
  EXPECT_THAT(by_cols.amax(), ElementsAre(11.0f, 0.999f, 22.0f));
}

}  // namespace
}  // namespace qcal::kernels
