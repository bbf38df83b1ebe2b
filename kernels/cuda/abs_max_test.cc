// cuda::FiniteAbsMax against its CPU twin kernels::FiniteAbsMax on the same decoded values:
// every dtype, every kind of memory, sizes from 1 to 2^26.
#include "kernels/cuda/abs_max.h"

#include <bit>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_testing.h"
#include "kernels/finite_abs_max.h"

namespace qcal::kernels::cuda {
namespace {

using testing::kAllDTypes;
using testing::kAllPlacements;
using testing::PlacedBatch;
using testing::RandomBatch;
using testing::RawBatch;
using testing::TestContext;

void ExpectSameAsCpu(const Context& context, const RawBatch& batch, testing::Placement placement) {
  const std::string what = absl::StrCat(std::string(DTypeName(batch.dtype)), " x ", batch.count,
                                        " in ", testing::PlacementName(placement), " memory");
  PlacedBatch placed(batch, placement);
  const absl::StatusOr<FiniteAbsMaxResult> gpu = FiniteAbsMax(context, placed.ref());
  ASSERT_TRUE(gpu.ok()) << what << ": " << gpu.status();
  const FiniteAbsMaxResult cpu = kernels::FiniteAbsMax(batch.decoded);
  EXPECT_EQ(std::bit_cast<uint32_t>(gpu->abs_max), std::bit_cast<uint32_t>(cpu.abs_max))
      << what << ": " << gpu->abs_max << " vs " << cpu.abs_max;
  EXPECT_EQ(gpu->nonfinite, cpu.nonfinite) << what;
}

TEST(FiniteAbsMax, HandValues) {
  QCAL_REQUIRE_GPU();
  const std::vector<float> x = {-0.0f, 2.5f, -7.25f, NAN, INFINITY, -INFINITY, 1e-45f};
  const auto r = FiniteAbsMax(*TestContext(), BatchRef::Float32(x));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->abs_max, 7.25f);
  EXPECT_EQ(r->nonfinite, 3);
  const auto empty = FiniteAbsMax(*TestContext(), BatchRef{nullptr, DType::kFloat32, 0});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->abs_max, 0.0f);
  EXPECT_EQ(empty->nonfinite, 0);
}

TEST(FiniteAbsMax, RandomSizesDTypesAndMemory) {
  QCAL_REQUIRE_GPU();
  const int64_t sizes[] = {1, 2, 3, 7, 8, 9, 31, 33, 255, 1000, 4097, 65537, (1 << 20) + 3};
  uint64_t seed = 1;
  for (const DType dtype : kAllDTypes) {
    for (const int64_t n : sizes) {
      const RawBatch batch = RandomBatch(dtype, n, ++seed);
      for (const testing::Placement placement : kAllPlacements) {
        ExpectSameAsCpu(*TestContext(), batch, placement);
      }
      // Pageable memory through many small staging pieces.
      ExpectSameAsCpu(*testing::SmallStageContext(), batch, testing::Placement::kPageable);
    }
  }
}

TEST(FiniteAbsMax, AllZeroAllNonFiniteAndOnlyOneLargeValue) {
  QCAL_REQUIRE_GPU();
  for (const DType dtype : kAllDTypes) {
    RawBatch zeros = RandomBatch(dtype, 5000, 7, {.nonfinite = 0.0, .zeros = 1.0});
    ExpectSameAsCpu(*TestContext(), zeros, testing::Placement::kDevice);
    RawBatch bad = RandomBatch(dtype, 5000, 8, {.nonfinite = 1.0, .zeros = 0.0});
    ExpectSameAsCpu(*TestContext(), bad, testing::Placement::kDevice);
  }
}

TEST(FiniteAbsMax, Size2To26) {
  QCAL_REQUIRE_GPU();
  const RawBatch f32 = RandomBatch(DType::kFloat32, int64_t{1} << 26, 26);
  ExpectSameAsCpu(*TestContext(), f32, testing::Placement::kDevice);
  ExpectSameAsCpu(*TestContext(), f32, testing::Placement::kPageable);
  const RawBatch bf16 = RandomBatch(DType::kBFloat16, (int64_t{1} << 26) + 5, 27);
  ExpectSameAsCpu(*TestContext(), bf16, testing::Placement::kDeviceUnaligned);
}

TEST(FiniteAbsMax, RefusesBadBatches) {
  QCAL_REQUIRE_GPU();
  EXPECT_EQ(FiniteAbsMax(*TestContext(), BatchRef{nullptr, DType::kFloat32, 3}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const float x = 1.0f;
  EXPECT_EQ(FiniteAbsMax(*TestContext(), BatchRef{&x, DType::kFloat32, -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Device memory not aligned to its element size.
  const std::vector<float> values(8, 1.0f);
  testing::DeviceBytes device(values.data(), values.size() * sizeof(float));
  const BatchRef odd{static_cast<char*>(device.data()) + 1, DType::kFloat32, 4};
  EXPECT_EQ(FiniteAbsMax(*TestContext(), odd).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qcal::kernels::cuda
