// max |x| reductions: per tensor (LaunchAbsMax), per channel (LaunchChannelAbsMax), and the
// count of negative values that unsigned quantization refuses (LaunchCountNegative).
// Float bits with the sign cleared order like the magnitudes, so maxima are integer atomicMax
// on those bits, exact and independent of the order.
#include <algorithm>

#include "kernels/cuda/internal/block_reduce.cuh"
#include "kernels/cuda/internal/device_values.cuh"
#include "kernels/cuda/internal/grid.cuh"
#include "kernels/cuda/internal/launch.h"

namespace qcal::kernels::cuda::internal {
namespace {

// Channels up to which a block keeps its own maxima in shared memory (16 KiB).
constexpr int64_t kSharedChannels = 4096;

__device__ __forceinline__ void TallyAbs(float x, unsigned int& max_bits, unsigned int& bad) {
  const unsigned int u = AbsBits(x);
  const bool finite = u < kInfBits;
  max_bits = finite ? max(max_bits, u) : max_bits;
  bad += finite ? 0u : 1u;
}

template <DType D>
__global__ void __launch_bounds__(kThreads)
    AbsMaxKernel(const void* data, int64_t count, unsigned int* max_bits,
                 unsigned long long* nonfinite) {
  using E = Elements<D>;
  unsigned int thread_max = 0;
  unsigned int bad = 0;  // at most kMaxLaunchElements per launch
  const int64_t units = VectorUnits<D>(data, count);
  const int64_t stride = GridThreads();
  for (int64_t u = GridThread(); u < units; u += stride) {
    float v[E::kVector];
    E::LoadVector(data, u, v);
#pragma unroll
    for (int j = 0; j < E::kVector; ++j) TallyAbs(v[j], thread_max, bad);
  }
  for (int64_t i = units * E::kVector + GridThread(); i < count; i += stride) {
    TallyAbs(E::Load(data, i), thread_max, bad);
  }
  ThreadTally tally;
  tally.max_bits = thread_max;
  tally.nonfinite = bad;
  const ThreadTally block = BlockTally(tally);
  if (threadIdx.x == 0) {
    if (block.max_bits != 0) atomicMax(max_bits, block.max_bits);
    if (block.nonfinite != 0) atomicAdd(nonfinite, block.nonfinite);
  }
}

template <DType D>
__global__ void __launch_bounds__(kThreads)
    CountNegativeKernel(const void* data, int64_t count, unsigned long long* negatives) {
  using E = Elements<D>;
  unsigned int negative = 0;
  const int64_t units = VectorUnits<D>(data, count);
  const int64_t stride = GridThreads();
  for (int64_t u = GridThread(); u < units; u += stride) {
    float v[E::kVector];
    E::LoadVector(data, u, v);
#pragma unroll
    for (int j = 0; j < E::kVector; ++j) negative += v[j] < 0.0f ? 1u : 0u;
  }
  for (int64_t i = units * E::kVector + GridThread(); i < count; i += stride) {
    negative += E::Load(data, i) < 0.0f ? 1u : 0u;
  }
  ThreadTally tally;
  tally.nonfinite = negative;
  const ThreadTally block = BlockTally(tally);
  if (threadIdx.x == 0 && block.nonfinite != 0) atomicAdd(negatives, block.nonfinite);
}

// The channel of element `index` of the batch: the kept runs' digits, weighted by their channel
// strides (runs before first_kept are all reduced, so their digits are not needed).
__device__ __forceinline__ int64_t ChannelOf(int64_t index, const ChannelLayout& layout) {
  int64_t channel = 0;
  for (int r = layout.num_runs - 1; r >= layout.first_kept; --r) {
    const int64_t size = layout.size[r];
    const int64_t quotient = index / size;
    channel += (index - quotient * size) * layout.channel_stride[r];
    index = quotient;
  }
  return channel;
}

// Raises *slot to u. The plain read first skips the atomic for the many values that cannot raise
// the max (maxima only grow, so a stale read at worst costs an atomic).
__device__ __forceinline__ void RaiseTo(unsigned int* slot, unsigned int u) {
  if (u > *static_cast<volatile unsigned int*>(slot)) atomicMax(slot, u);
}

template <DType D, bool kShared>
__global__ void __launch_bounds__(kThreads)
    ChannelAbsMaxKernel(const void* data, int64_t offset, int64_t count, ChannelLayout layout,
                        int64_t channels, unsigned int* bits, unsigned long long* nonfinite) {
  extern __shared__ unsigned int shared_bits[];
  if constexpr (kShared) {
    for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) shared_bits[c] = 0u;
    __syncthreads();
  }
  unsigned int bad = 0;
  const int64_t stride = GridThreads();
  for (int64_t i = GridThread(); i < count; i += stride) {
    const unsigned int u = AbsBits(Elements<D>::Load(data, i));
    if (u >= kInfBits) {
      ++bad;
    } else if (u != 0u) {  // a zero never raises a max that starts at 0
      const int64_t c = ChannelOf(offset + i, layout);
      RaiseTo(kShared ? shared_bits + c : bits + c, u);
    }
  }
  if constexpr (kShared) {
    __syncthreads();
    for (int64_t c = threadIdx.x; c < channels; c += blockDim.x) {
      const unsigned int m = shared_bits[c];
      if (m != 0u) RaiseTo(bits + c, m);
    }
  }
  ThreadTally tally;
  tally.nonfinite = bad;
  const ThreadTally block = BlockTally(tally);
  if (threadIdx.x == 0 && block.nonfinite != 0) atomicAdd(nonfinite, block.nonfinite);
}

template <DType D>
cudaError_t AbsMaxPieces(const void* data, int64_t count, unsigned int* max_bits,
                         unsigned long long* nonfinite, const Launch& launch) {
  const char* bytes = static_cast<const char*>(data);
  constexpr int64_t size = Elements<D>::kBytes;
  for (int64_t begin = 0; begin < count; begin += kMaxLaunchElements) {
    const int64_t n = count - begin < kMaxLaunchElements ? count - begin : kMaxLaunchElements;
    const int grid = GridFor(n, int64_t{kThreads} * Elements<D>::kVector * 4, launch.max_blocks);
    AbsMaxKernel<D>
        <<<grid, kThreads, 0, launch.stream>>>(bytes + begin * size, n, max_bits, nonfinite);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

template <DType D>
cudaError_t CountNegativePieces(const void* data, int64_t count, unsigned long long* negatives,
                                const Launch& launch) {
  const char* bytes = static_cast<const char*>(data);
  constexpr int64_t size = Elements<D>::kBytes;
  for (int64_t begin = 0; begin < count; begin += kMaxLaunchElements) {
    const int64_t n = count - begin < kMaxLaunchElements ? count - begin : kMaxLaunchElements;
    const int grid = GridFor(n, int64_t{kThreads} * Elements<D>::kVector * 4, launch.max_blocks);
    CountNegativeKernel<D>
        <<<grid, kThreads, 0, launch.stream>>>(bytes + begin * size, n, negatives);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

template <DType D>
cudaError_t ChannelAbsMaxPieces(const void* data, int64_t offset, int64_t count,
                                const ChannelLayout& layout, int64_t channels, unsigned int* bits,
                                unsigned long long* nonfinite, const Launch& launch) {
  const char* bytes = static_cast<const char*>(data);
  constexpr int64_t size = Elements<D>::kBytes;
  for (int64_t begin = 0; begin < count; begin += kMaxLaunchElements) {
    const int64_t n = count - begin < kMaxLaunchElements ? count - begin : kMaxLaunchElements;
    const void* piece = bytes + begin * size;
    if (channels <= kSharedChannels) {
      // Enough elements per block that clearing and flushing the shared maxima stays cheap.
      const int64_t per_block = std::max<int64_t>(int64_t{kThreads} * 8, channels * 8);
      const int grid = GridFor(n, per_block, launch.max_blocks);
      const size_t shared = static_cast<size_t>(channels) * sizeof(unsigned int);
      ChannelAbsMaxKernel<D, true><<<grid, kThreads, shared, launch.stream>>>(
          piece, offset + begin, n, layout, channels, bits, nonfinite);
    } else {
      const int grid = GridFor(n, int64_t{kThreads} * 8, launch.max_blocks);
      ChannelAbsMaxKernel<D, false><<<grid, kThreads, 0, launch.stream>>>(
          piece, offset + begin, n, layout, channels, bits, nonfinite);
    }
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t LaunchAbsMax(const void* data, DType dtype, int64_t count, unsigned int* max_bits,
                         unsigned long long* nonfinite, const Launch& launch) {
  switch (dtype) {
    case DType::kFloat32:
      return AbsMaxPieces<DType::kFloat32>(data, count, max_bits, nonfinite, launch);
    case DType::kFloat16:
      return AbsMaxPieces<DType::kFloat16>(data, count, max_bits, nonfinite, launch);
    case DType::kBFloat16:
      return AbsMaxPieces<DType::kBFloat16>(data, count, max_bits, nonfinite, launch);
    case DType::kFloat64:
      return AbsMaxPieces<DType::kFloat64>(data, count, max_bits, nonfinite, launch);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchCountNegative(const void* data, DType dtype, int64_t count,
                                unsigned long long* negatives, const Launch& launch) {
  switch (dtype) {
    case DType::kFloat32:
      return CountNegativePieces<DType::kFloat32>(data, count, negatives, launch);
    case DType::kFloat16:
      return CountNegativePieces<DType::kFloat16>(data, count, negatives, launch);
    case DType::kBFloat16:
      return CountNegativePieces<DType::kBFloat16>(data, count, negatives, launch);
    case DType::kFloat64:
      return CountNegativePieces<DType::kFloat64>(data, count, negatives, launch);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchChannelAbsMax(const void* data, DType dtype, int64_t offset, int64_t count,
                                const ChannelLayout& layout, int64_t channels, unsigned int* bits,
                                unsigned long long* nonfinite, const Launch& launch) {
  switch (dtype) {
    case DType::kFloat32:
      return ChannelAbsMaxPieces<DType::kFloat32>(data, offset, count, layout, channels, bits,
                                                  nonfinite, launch);
    case DType::kFloat16:
      return ChannelAbsMaxPieces<DType::kFloat16>(data, offset, count, layout, channels, bits,
                                                  nonfinite, launch);
    case DType::kBFloat16:
      return ChannelAbsMaxPieces<DType::kBFloat16>(data, offset, count, layout, channels, bits,
                                                   nonfinite, launch);
    case DType::kFloat64:
      return ChannelAbsMaxPieces<DType::kFloat64>(data, offset, count, layout, channels, bits,
                                                  nonfinite, launch);
  }
  return cudaErrorInvalidValue;
}

}  // namespace qcal::kernels::cuda::internal
