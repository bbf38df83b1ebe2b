// Device discovery and Context setup. These run with or without a GPU: without one they check
// the refusal that qcal-server --device cuda reports.
#include "kernels/cuda/context.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/abs_max.h"
#include "kernels/cuda/cuda_testing.h"

namespace qcal::kernels::cuda {
namespace {

using testing::DeviceStatus;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::TestContext;

TEST(ProbeDevice, NamesTheDeviceOrSaysWhyThereIsNone) {
  const absl::StatusOr<DeviceInfo> info = ProbeDevice(0);
  if (!info.ok()) {
    EXPECT_EQ(info.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(info.status().message()), StartsWith("no CUDA device: "));
    // The runtime's own reason follows, e.g. "CUDA driver version is insufficient ...".
    EXPECT_GT(info.status().message().size(), std::string("no CUDA device: ").size());
    EXPECT_EQ(TestContext(), nullptr);
    EXPECT_EQ(DeviceStatus().code(), absl::StatusCode::kUnavailable);
    return;
  }
  EXPECT_EQ(info->ordinal, 0);
  EXPECT_FALSE(info->name.empty());
  EXPECT_GE(info->major, 7);
  EXPECT_GT(info->multiprocessors, 0);
  EXPECT_GT(info->total_memory, int64_t{1} << 30);
  ASSERT_NE(TestContext(), nullptr);
  EXPECT_EQ(TestContext()->info().name, info->name);
}

TEST(ProbeDevice, RefusesOrdinalsBeyondTheDevices) {
  const absl::StatusOr<DeviceInfo> info = ProbeDevice(1 << 20);
  ASSERT_FALSE(info.ok());
  // Without a device the missing device is the answer; with one, the ordinal is wrong.
  EXPECT_TRUE(info.status().code() == absl::StatusCode::kUnavailable ||
              info.status().code() == absl::StatusCode::kInvalidArgument)
      << info.status();
  EXPECT_FALSE(ProbeDevice(-1).ok());
}

TEST(Context, RefusesBadOptionsBeforeLookingForADevice) {
  const auto small = Context::Create(0, {.stage_bytes = 1024, .max_concurrent_calls = 1});
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(small.status().message()), HasSubstr("stage_bytes"));
  const auto none = Context::Create(0, {.stage_bytes = 1 << 20, .max_concurrent_calls = 0});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Context, CreateFailsLikeProbeWithoutADevice) {
  const absl::StatusOr<DeviceInfo> info = ProbeDevice(0);
  const absl::StatusOr<std::shared_ptr<Context>> context = Context::Create(0);
  EXPECT_EQ(context.ok(), info.ok());
  if (!info.ok()) {
    EXPECT_EQ(context.status(), info.status());
  }
}

TEST(Context, CountsTheMemoryItsObjectsHold) {
  QCAL_REQUIRE_GPU();
  // A fresh context, so that the count is not shared with other tests.
  absl::StatusOr<std::shared_ptr<Context>> context = Context::Create(0);
  ASSERT_TRUE(context.ok()) << context.status();
  absl::StatusOr<DeviceMemoryUse> before = (*context)->MemoryUse();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->allocated, 0);
  EXPECT_GT(before->total, 0);
  EXPECT_LE(before->free, before->total);
  const std::vector<float> x = {1.0f, -2.0f, 3.0f};
  ASSERT_TRUE(FiniteAbsMax(**context, BatchRef::Float32(x)).ok());
  absl::StatusOr<DeviceMemoryUse> after = (*context)->MemoryUse();
  ASSERT_TRUE(after.ok()) << after.status();
  // The call's staging buffers stay with the context for the next call: 2 x 8 MiB at least.
  EXPECT_GE(after->allocated, 2 * ContextOptions{}.stage_bytes);
}

}  // namespace
}  // namespace qcal::kernels::cuda
