// Inputs shared by the benchmarks: activation-like float32 tensors, made once per process.
#ifndef QCAL_BENCH_BENCH_DATA_H_
#define QCAL_BENCH_BENCH_DATA_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace qcal::bench {

// 16M elements: the tensor size of the CPU figures (64 MiB of float32).
inline constexpr int64_t kTensorElements = int64_t{1} << 24;

// `count` standard-normal float32 values from a fixed seed (the same values on every run).
std::vector<float> NormalValues(int64_t count, uint64_t seed = 1);

// Page size of a benchmark buffer: the kernel's default 4 KiB pages, or 2 MiB transparent huge
// pages (as qcal-server's batch buffers, server/core/batch_assembler.cc), where the kernel grants
// them.
enum class Pages { k4KiB, k2MiB };

// `count` floats, 2 MiB aligned, backed by `pages` (advice only) and touched once.
class FloatBuffer {
 public:
  FloatBuffer(int64_t count, Pages pages);
  std::span<float> span() { return {data_.get(), static_cast<size_t>(count_)}; }
  std::span<const float> span() const { return {data_.get(), static_cast<size_t>(count_)}; }

 private:
  struct Free {
    void operator()(float* p) const;
  };
  int64_t count_;
  std::unique_ptr<float[], Free> data_;
};

}  // namespace qcal::bench

#endif  // QCAL_BENCH_BENCH_DATA_H_
