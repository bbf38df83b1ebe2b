#include "kernels/cuda/cuda_testing.h"

#include <cuda_runtime_api.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

namespace qcal::kernels::cuda::testing {
namespace {

struct Device {
  absl::Status status;
  std::shared_ptr<Context> context;
  std::shared_ptr<Context> small_stage;
};

const Device& TheDevice() {
  static const Device* device = [] {
    auto* d = new Device;
    absl::StatusOr<std::shared_ptr<Context>> context = Context::Create(0);
    if (!context.ok()) {
      d->status = context.status();
      return d;
    }
    d->context = *std::move(context);
    absl::StatusOr<std::shared_ptr<Context>> small =
        Context::Create(0, {.stage_bytes = int64_t{64} << 10, .max_concurrent_calls = 2});
    if (!small.ok()) {
      d->status = small.status();
      d->context = nullptr;
      return d;
    }
    d->small_stage = *std::move(small);
    return d;
  }();
  return *device;
}

// Says once, where everyone reads it, whether the GPU tests run.
class DeviceBanner : public ::testing::Environment {
 public:
  void SetUp() override {
    const Device& device = TheDevice();
    if (device.context == nullptr) {
      std::fprintf(stderr,
                   "\n*** qcal CUDA kernel tests: NO GPU (%s); every GPU test is SKIPPED ***\n\n",
                   std::string(device.status.message()).c_str());
    } else {
      const DeviceInfo& info = device.context->info();
      std::fprintf(stderr, "qcal CUDA kernel tests on device %d: %s (sm_%d%d, %d SMs)\n",
                   info.ordinal, info.name.c_str(), info.major, info.minor, info.multiprocessors);
    }
  }
};

[[maybe_unused]] const ::testing::Environment* const kBanner =
    ::testing::AddGlobalTestEnvironment(new DeviceBanner);

void Check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) {
    ADD_FAILURE() << what << ": " << cudaGetErrorString(error);
    std::abort();  // a test helper failing to allocate: nothing below can run
  }
}

// float32 -> float16 bits by truncation (any valid half is good test data); |v| must be below
// 65536, values below 2^-14 become subnormal or zero.
uint16_t HalfBitsOf(float v) {
  const uint32_t u = std::bit_cast<uint32_t>(v);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const float a = std::fabs(v);
  if (a >= 65504.0f) return static_cast<uint16_t>(sign | 0x7bffu);
  if (a < 0x1p-14f) {
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(a * 0x1p24f));  // subnormal
  }
  const uint32_t au = std::bit_cast<uint32_t>(a);
  const uint32_t exponent = (au >> 23) - 112;
  return static_cast<uint16_t>(sign | (exponent << 10) | ((au >> 13) & 0x3ffu));
}

}  // namespace

const std::shared_ptr<Context>& TestContext() { return TheDevice().context; }
const std::shared_ptr<Context>& SmallStageContext() { return TheDevice().small_stage; }
const absl::Status& DeviceStatus() { return TheDevice().status; }

RawBatch RandomBatch(DType dtype, int64_t count, uint64_t seed, const RandomOptions& options) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float top = options.scale * 4.0f;  // the largest magnitude, repeated now and then
  // Magnitudes: the values as doubles, so float64 batches can hold some beyond float32's range.
  std::vector<double> values(static_cast<size_t>(count));
  for (double& v : values) {
    const double pick = unit(rng);
    const double sign = options.non_negative || unit(rng) < 0.5 ? 1.0 : -1.0;
    if (pick < options.nonfinite) {
      const double kind = unit(rng);
      v = kind < 0.5 ? std::nan("") : sign * HUGE_VAL;
    } else if (pick < options.nonfinite + options.zeros) {
      v = sign * 0.0;
    } else {
      const double r =
          (pick - options.nonfinite - options.zeros) / (1.0 - options.nonfinite - options.zeros);
      if (r < 0.55) {
        v = options.scale * normal(rng);
      } else if (r < 0.75) {
        v = sign * options.scale * unit(rng) * 4.0;
      } else if (r < 0.87) {
        // k / 2048 and k / 1000 of the top: values on (or next to) bin edges.
        const double k = std::floor(unit(rng) * 2049.0);
        v = sign *
            static_cast<double>(static_cast<float>(k / (unit(rng) < 0.5 ? 2048.0 : 1000.0)) * top);
      } else if (r < 0.92) {
        v = sign * top;
      } else if (r < 0.95) {
        v = sign * std::ldexp(unit(rng), -130);  // float32 subnormal
      } else {
        v = sign * std::ldexp(unit(rng) + 0.5, static_cast<int>(unit(rng) * 40.0) - 30);
      }
    }
  }
  RawBatch batch;
  batch.dtype = dtype;
  batch.count = count;
  batch.bytes.resize(static_cast<size_t>(count) * DTypeSize(dtype));
  for (int64_t i = 0; i < count; ++i) {
    uint8_t* out = batch.bytes.data() + i * DTypeSize(dtype);
    const float f = static_cast<float>(values[i]);
    switch (dtype) {
      case DType::kFloat32:
        std::memcpy(out, &f, 4);
        break;
      case DType::kFloat16: {
        uint16_t h;
        if (std::isnan(f)) {
          h = static_cast<uint16_t>(0x7e00u | (rng() & 0x1ffu));  // NaN with a payload
        } else if (std::isinf(f)) {
          h = f > 0 ? 0x7c00u : 0xfc00u;
        } else {
          h = HalfBitsOf(f);
        }
        std::memcpy(out, &h, 2);
        break;
      }
      case DType::kBFloat16: {
        const uint16_t b = static_cast<uint16_t>(std::bit_cast<uint32_t>(f) >> 16);
        std::memcpy(out, &b, 2);
        break;
      }
      case DType::kFloat64: {
        double d = values[i];
        if (std::isfinite(d) && unit(rng) < 0.002) d *= 1e300;  // beyond float32: +-inf
        std::memcpy(out, &d, 8);
        break;
      }
    }
  }
  batch.decoded.resize(static_cast<size_t>(count));
  DecodeToFloat32(dtype, batch.bytes.data(), static_cast<size_t>(count), batch.decoded.data());
  return batch;
}

std::string PlacementName(Placement placement) {
  switch (placement) {
    case Placement::kPageable:
      return "pageable";
    case Placement::kPinned:
      return "pinned";
    case Placement::kDevice:
      return "device";
    case Placement::kDeviceUnaligned:
      return "device_unaligned";
  }
  return "unknown";
}

PlacedBatch::PlacedBatch(const RawBatch& batch, Placement placement) : placement_(placement) {
  const size_t bytes = batch.bytes.size();
  const size_t element = DTypeSize(batch.dtype);
  switch (placement) {
    case Placement::kPageable:
      host_ = batch.bytes;
      ref_ = {host_.data(), batch.dtype, batch.count};
      return;
    case Placement::kPinned:
      Check(cudaMallocHost(&allocation_, bytes + 1), "cudaMallocHost");
      std::memcpy(allocation_, batch.bytes.data(), bytes);
      ref_ = {allocation_, batch.dtype, batch.count};
      return;
    case Placement::kDevice:
    case Placement::kDeviceUnaligned: {
      const size_t offset = placement == Placement::kDevice ? 0 : element;
      Check(cudaMalloc(&allocation_, bytes + offset + 1), "cudaMalloc");
      char* start = static_cast<char*>(allocation_) + offset;
      Check(cudaMemcpy(start, batch.bytes.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
      ref_ = {start, batch.dtype, batch.count};
      return;
    }
  }
}

PlacedBatch::~PlacedBatch() {
  if (allocation_ == nullptr) return;
  if (placement_ == Placement::kPinned) {
    cudaFreeHost(allocation_);
  } else {
    cudaFree(allocation_);
  }
}

DeviceBytes::DeviceBytes(const void* data, size_t bytes) {
  Check(cudaMalloc(&data_, bytes + 1), "cudaMalloc");
  Check(cudaMemcpy(data_, data, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
}

DeviceBytes::~DeviceBytes() { cudaFree(data_); }

std::vector<uint8_t> CopyToHost(const void* device, size_t bytes) {
  std::vector<uint8_t> out(bytes);
  Check(cudaMemcpy(out.data(), device, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  return out;
}

}  // namespace qcal::kernels::cuda::testing
