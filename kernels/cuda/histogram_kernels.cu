// Histogram collection on the device: the fused bin + max pass (LaunchBinAbs, and
// LaunchBinMergeable for the mergeable layout), the exact count updates (LaunchCombineCounts,
// LaunchCoarsenAdd) and the total (LaunchSumCounts).
//
// Bins are privatized per block in shared memory as 32-bit counters (a launch covers at most
// 2^30 elements, so they cannot wrap) and flushed into 64-bit device counts: every count is an
// exact integer. Histograms too large for shared memory count straight into device memory.
// Zeros and non-finite values are tallied per thread instead of binned, so a run of ReLU zeros
// does not pile atomics onto bin 0; a warp whose 32 values share one bin adds 32 at once.
//
// The bin arithmetic is kernels/histogram_binning.cc's: IEEE division and multiplication in
// float32 (__fdiv_rn, __fmul_rn: never approximated or fused), truncation toward zero.
#include <algorithm>

#include "kernels/cuda/internal/block_reduce.cuh"
#include "kernels/cuda/internal/device_values.cuh"
#include "kernels/cuda/internal/grid.cuh"
#include "kernels/cuda/internal/launch.h"

namespace qcal::kernels::cuda::internal {
namespace {

// Bins up to which a block keeps its counters in shared memory: 48000 bytes, which with the
// block reduction's static shared memory stays under the 48 KiB a launch gets without opt-in.
constexpr int64_t kSharedBins = 12000;
// A value that is not binned (zero, non-finite, or a lane past the end).
constexpr unsigned int kNoBin = 0xffffffffu;

struct BinGrid {
  float range_max;
  float bins_f;  // num_bins, exact in float32
  unsigned int last_bin;
};

// The value's bin, or kNoBin for zeros and non-finite values, which are tallied instead.
__device__ __forceinline__ unsigned int Classify(float x, const BinGrid& g, unsigned int& max_bits,
                                                 unsigned int& bad, unsigned int& zeros) {
  const unsigned int u = AbsBits(x);
  if (u >= kInfBits) {
    ++bad;
    return kNoBin;
  }
  max_bits = max(max_bits, u);
  if (u == 0u) {
    ++zeros;
    return kNoBin;
  }
  // The reference's two roundings: the quotient, then the product with the bin count.
  const float quotient = __fdiv_rn(__uint_as_float(u), g.range_max);
  float t = __fmul_rn(quotient, g.bins_f);
  t = t < g.bins_f ? t : g.bins_f;  // values above range_max (and an infinite quotient)
  const unsigned int bin = static_cast<unsigned int>(__float2int_rz(t));
  return bin < g.last_bin ? bin : g.last_bin;
}

// The mergeable layout's bins (kernels/mergeable_binning.h): floor(|x| / 2^k) as
// (|x| * first) * second, two exact power-of-two scalings (no FTZ: subnormal |x| scale exactly).
struct MergeableGrid {
  float first;
  float second;
  unsigned int last_bin;
};

__device__ __forceinline__ unsigned int Classify(float x, const MergeableGrid& g,
                                                 unsigned int& max_bits, unsigned int& bad,
                                                 unsigned int& zeros) {
  const unsigned int u = AbsBits(x);
  if (u >= kInfBits) {
    ++bad;
    return kNoBin;
  }
  max_bits = max(max_bits, u);
  if (u == 0u) {
    ++zeros;
    return kNoBin;
  }
  float t = __fmul_rn(__fmul_rn(__uint_as_float(u), g.first), g.second);
  t = t < 0x1p30f ? t : 0x1p30f;  // only a value above the max pass's could get here
  const unsigned int bin = static_cast<unsigned int>(__float2int_rz(t));
  return bin < g.last_bin ? bin : g.last_bin;
}

template <bool kShared>
__device__ __forceinline__ void CountBin(unsigned int bin, unsigned int n,
                                         unsigned int* shared_counts, unsigned long long* counts) {
  if constexpr (kShared) {
    atomicAdd(shared_counts + bin, n);
  } else {
    atomicAdd(counts + bin, static_cast<unsigned long long>(n));
  }
}

template <DType D, bool kShared, typename Grid>
__global__ void __launch_bounds__(kThreads)
    BinKernel(const void* data, int64_t count, Grid grid, unsigned int num_bins,
              unsigned long long* counts, DeviceBatchStats* stats) {
  using E = Elements<D>;
  extern __shared__ unsigned int shared_counts[];
  if constexpr (kShared) {
    for (unsigned int b = threadIdx.x; b < num_bins; b += blockDim.x) shared_counts[b] = 0u;
    __syncthreads();
  }
  unsigned int max_bits = 0;
  unsigned int bad = 0;
  unsigned int zeros = 0;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t units = VectorUnits<D>(data, count);
  // Rounded up to whole warps: every lane of a warp runs the same iterations (lanes past the end
  // carry kNoBin), so the warp-wide vote below sees all 32 lanes.
  const int64_t warp_units = (units + kWarpSize - 1) / kWarpSize * kWarpSize;
  const int64_t stride = GridThreads();
  for (int64_t u = GridThread(); u < warp_units; u += stride) {
    float v[E::kVector];
    const bool valid = u < units;
    if (valid) E::LoadVector(data, u, v);
#pragma unroll
    for (int j = 0; j < E::kVector; ++j) {
      const unsigned int bin = valid ? Classify(v[j], grid, max_bits, bad, zeros) : kNoBin;
      const unsigned int first = __shfl_sync(kFullMask, bin, 0);
      if (__all_sync(kFullMask, bin == first)) {
        if (lane == 0 && first != kNoBin) CountBin<kShared>(first, 32u, shared_counts, counts);
      } else if (bin != kNoBin) {
        CountBin<kShared>(bin, 1u, shared_counts, counts);
      }
    }
  }
  for (int64_t i = units * E::kVector + GridThread(); i < count; i += stride) {
    const unsigned int bin = Classify(E::Load(data, i), grid, max_bits, bad, zeros);
    if (bin != kNoBin) CountBin<kShared>(bin, 1u, shared_counts, counts);
  }
  if constexpr (kShared) {
    __syncthreads();
    for (unsigned int b = threadIdx.x; b < num_bins; b += blockDim.x) {
      const unsigned int c = shared_counts[b];
      if (c != 0u) atomicAdd(counts + b, static_cast<unsigned long long>(c));
    }
  }
  ThreadTally tally;
  tally.max_bits = max_bits;
  tally.nonfinite = bad;
  tally.zeros = zeros;
  const ThreadTally block = BlockTally(tally);
  if (threadIdx.x == 0) {
    if (block.max_bits != 0u) atomicMax(&stats->max_bits, block.max_bits);
    if (block.nonfinite != 0u) atomicAdd(&stats->nonfinite, block.nonfinite);
    if (block.zeros != 0u) atomicAdd(&stats->zeros, block.zeros);
  }
}

template <DType D, typename Grid>
cudaError_t BinPieces(const void* data, int64_t count, const Grid& grid, int64_t num_bins,
                      unsigned long long* counts, DeviceBatchStats* stats, const Launch& launch) {
  const char* bytes = static_cast<const char*>(data);
  constexpr int64_t size = Elements<D>::kBytes;
  for (int64_t begin = 0; begin < count; begin += kMaxLaunchElements) {
    const int64_t n = count - begin < kMaxLaunchElements ? count - begin : kMaxLaunchElements;
    const void* piece = bytes + begin * size;
    if (num_bins <= kSharedBins) {
      // Enough values per block that clearing and flushing its bins stays a small share.
      const int64_t per_block =
          std::max<int64_t>(int64_t{kThreads} * Elements<D>::kVector * 4, num_bins * 8);
      const int blocks = GridFor(n, per_block, launch.max_blocks);
      const size_t shared = static_cast<size_t>(num_bins) * sizeof(unsigned int);
      BinKernel<D, true, Grid><<<blocks, kThreads, shared, launch.stream>>>(
          piece, n, grid, static_cast<unsigned int>(num_bins), counts, stats);
    } else {
      const int blocks =
          GridFor(n, int64_t{kThreads} * Elements<D>::kVector * 4, launch.max_blocks);
      BinKernel<D, false, Grid><<<blocks, kThreads, 0, launch.stream>>>(
          piece, n, grid, static_cast<unsigned int>(num_bins), counts, stats);
    }
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

__global__ void __launch_bounds__(kThreads)
    CombineKernel(unsigned long long* dst, const unsigned long long* src, int64_t bins,
                  const unsigned long long* old, int64_t old_bins,
                  unsigned long long add_to_first) {
  const int64_t stride = GridThreads();
  for (int64_t b = GridThread(); b < bins; b += stride) {
    unsigned long long c = src[b];
    if (b < old_bins) c += old[b];
    if (b == 0) c += add_to_first;
    dst[b] = c;
  }
}

// into[i >> shift] += from[i]: bin i at exponent e lies inside bin i >> (k - e) at k.
__global__ void __launch_bounds__(kThreads)
    CoarsenAddKernel(unsigned long long* into, const unsigned long long* from, int64_t from_bins,
                     int shift) {
  const int64_t stride = GridThreads();
  for (int64_t i = GridThread(); i < from_bins; i += stride) {
    const unsigned long long c = from[i];
    if (c != 0) atomicAdd(into + (i >> shift), c);
  }
}

__global__ void __launch_bounds__(kThreads)
    SumKernel(const unsigned long long* counts, int64_t bins, unsigned long long* total) {
  unsigned long long sum = 0;
  const int64_t stride = GridThreads();
  for (int64_t b = GridThread(); b < bins; b += stride) sum += counts[b];
  ThreadTally tally;
  tally.nonfinite = sum;
  const ThreadTally block = BlockTally(tally);
  if (threadIdx.x == 0 && block.nonfinite != 0) atomicAdd(total, block.nonfinite);
}

template <typename Grid>
cudaError_t BinAnyDType(const void* data, DType dtype, int64_t count, const Grid& grid,
                        int64_t num_bins, unsigned long long* counts, DeviceBatchStats* stats,
                        const Launch& launch) {
  switch (dtype) {
    case DType::kFloat32:
      return BinPieces<DType::kFloat32>(data, count, grid, num_bins, counts, stats, launch);
    case DType::kFloat16:
      return BinPieces<DType::kFloat16>(data, count, grid, num_bins, counts, stats, launch);
    case DType::kBFloat16:
      return BinPieces<DType::kBFloat16>(data, count, grid, num_bins, counts, stats, launch);
    case DType::kFloat64:
      return BinPieces<DType::kFloat64>(data, count, grid, num_bins, counts, stats, launch);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t LaunchBinAbs(const void* data, DType dtype, int64_t count, float range_max,
                         int64_t num_bins, unsigned long long* counts, DeviceBatchStats* stats,
                         const Launch& launch) {
  if (!(range_max > 0.0f) || num_bins < 1 || num_bins > (int64_t{1} << 24)) {
    return cudaErrorInvalidValue;
  }
  const BinGrid grid{range_max, static_cast<float>(num_bins),
                     static_cast<unsigned int>(num_bins - 1)};
  return BinAnyDType(data, dtype, count, grid, num_bins, counts, stats, launch);
}

cudaError_t LaunchBinMergeable(const void* data, DType dtype, int64_t count, float first,
                               float second, int64_t num_bins, unsigned long long* counts,
                               DeviceBatchStats* stats, const Launch& launch) {
  if (num_bins < 1 || num_bins > (int64_t{1} << 25)) return cudaErrorInvalidValue;
  const MergeableGrid grid{first, second, static_cast<unsigned int>(num_bins - 1)};
  return BinAnyDType(data, dtype, count, grid, num_bins, counts, stats, launch);
}

cudaError_t LaunchCoarsenAdd(unsigned long long* into, int64_t into_bins,
                             const unsigned long long* from, int64_t from_bins, int shift,
                             const Launch& launch) {
  if (shift < 0 || from_bins < 0) return cudaErrorInvalidValue;
  if (shift > 62) shift = 62;  // every bin index (< 2^62) lands in bin 0
  if (from_bins > 0 && ((from_bins - 1) >> shift) >= into_bins) return cudaErrorInvalidValue;
  if (from_bins == 0) return cudaSuccess;
  const int blocks = GridFor(from_bins, kThreads, launch.max_blocks);
  CoarsenAddKernel<<<blocks, kThreads, 0, launch.stream>>>(into, from, from_bins, shift);
  return cudaGetLastError();
}

cudaError_t LaunchCombineCounts(unsigned long long* dst, const unsigned long long* src,
                                int64_t bins, const unsigned long long* old, int64_t old_bins,
                                unsigned long long add_to_first, const Launch& launch) {
  if (old_bins > bins || (old == nullptr && old_bins != 0)) return cudaErrorInvalidValue;
  const int blocks = GridFor(bins, kThreads, launch.max_blocks);
  CombineKernel<<<blocks, kThreads, 0, launch.stream>>>(dst, src, bins, old, old_bins,
                                                        add_to_first);
  return cudaGetLastError();
}

cudaError_t LaunchSumCounts(const unsigned long long* counts, int64_t bins,
                            unsigned long long* total, const Launch& launch) {
  const int blocks = GridFor(bins, int64_t{kThreads} * 8, launch.max_blocks);
  SumKernel<<<blocks, kThreads, 0, launch.stream>>>(counts, bins, total);
  return cudaGetLastError();
}

}  // namespace qcal::kernels::cuda::internal
