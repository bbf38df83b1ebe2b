// Test support for the CUDA kernel tests: the shared device Context (or why there is none),
// random batches of every dtype with their CPU decoding, and copies of a batch in each kind of
// memory the kernels read.
//
//   TEST(FiniteAbsMax, Random) {
//     QCAL_REQUIRE_GPU();   // GTEST_SKIP with the reason where no device exists
//     RawBatch batch = RandomBatch(DType::kFloat16, 1000, /*seed=*/1);
//     PlacedBatch placed(batch, Placement::kDevice);
//     auto gpu = FiniteAbsMax(*TestContext(), placed.ref());
//     auto cpu = kernels::FiniteAbsMax(batch.decoded);
//   }
#ifndef QCAL_KERNELS_CUDA_CUDA_TESTING_H_
#define QCAL_KERNELS_CUDA_CUDA_TESTING_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "kernels/cuda/batch_ref.h"
#include "kernels/cuda/context.h"
#include "kernels/dtype.h"

namespace qcal::kernels::cuda::testing {

// The Context every GPU test uses (default options), or null without a device.
const std::shared_ptr<Context>& TestContext();
// One with 64 KiB staging buffers and 2 concurrent calls, so that host batches go through many
// pieces and callers wait for staging buffers. Null without a device.
const std::shared_ptr<Context>& SmallStageContext();
// Why TestContext() is null ("no CUDA device: ..."); OK when it is not.
const absl::Status& DeviceStatus();

#define QCAL_REQUIRE_GPU()                                                      \
  do {                                                                          \
    if (::qcal::kernels::cuda::testing::TestContext() == nullptr) {             \
      GTEST_SKIP() << "GPU test skipped: "                                      \
                   << ::qcal::kernels::cuda::testing::DeviceStatus().message(); \
    }                                                                           \
  } while (false)

inline constexpr DType kAllDTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                       DType::kFloat64};

struct RandomOptions {
  // Share of NaN and +-inf among the values.
  double nonfinite = 0.01;
  // Share of exact zeros (+0 and -0).
  double zeros = 0.05;
  // Typical magnitude of the values.
  float scale = 1.0f;
  // Only values >= 0 (and NaN, +inf): input for unsigned quantization.
  bool non_negative = false;
};

// `count` little-endian elements of `dtype` and their float32 decoding by
// kernels::DecodeToFloat32 (the CPU twin's input).
struct RawBatch {
  DType dtype = DType::kFloat32;
  int64_t count = 0;
  std::vector<uint8_t> bytes;
  std::vector<float> decoded;

  BatchRef host_ref() const { return {bytes.data(), dtype, count}; }
};

// Values of many kinds: normal and uniform ones, values on bin-edge fractions of the largest
// value and that value repeated, subnormals, zeros and non-finite values.
RawBatch RandomBatch(DType dtype, int64_t count, uint64_t seed, const RandomOptions& options = {});

enum class Placement { kPageable, kPinned, kDevice, kDeviceUnaligned };
inline constexpr Placement kAllPlacements[] = {Placement::kPageable, Placement::kPinned,
                                               Placement::kDevice, Placement::kDeviceUnaligned};
std::string PlacementName(Placement placement);

// A copy of a batch's bytes in the given kind of memory (kDeviceUnaligned: device memory at an
// offset of one element past a 256-byte boundary, so that vector loads cannot be used).
class PlacedBatch {
 public:
  PlacedBatch(const RawBatch& batch, Placement placement);
  ~PlacedBatch();
  PlacedBatch(const PlacedBatch&) = delete;
  PlacedBatch& operator=(const PlacedBatch&) = delete;

  BatchRef ref() const { return ref_; }

 private:
  void* allocation_ = nullptr;
  Placement placement_;
  std::vector<uint8_t> host_;
  BatchRef ref_;
};

// `bytes` copied to device memory (freed on destruction), for tests of device-resident inputs.
class DeviceBytes {
 public:
  DeviceBytes(const void* data, size_t bytes);
  ~DeviceBytes();
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;

  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
};

// Copies device memory back.
std::vector<uint8_t> CopyToHost(const void* device, size_t bytes);

}  // namespace qcal::kernels::cuda::testing

#endif  // QCAL_KERNELS_CUDA_CUDA_TESTING_H_
