// Warp and block reductions and scans in a fixed order (internal, nvcc only), so that a kernel
// gives the same bits on every run.
#ifndef QCAL_KERNELS_CUDA_INTERNAL_BLOCK_REDUCE_CUH_
#define QCAL_KERNELS_CUDA_INTERNAL_BLOCK_REDUCE_CUH_

#include <cuda_runtime.h>

namespace qcal::kernels::cuda::internal {

inline constexpr unsigned int kFullMask = 0xffffffffu;
inline constexpr int kWarpSize = 32;

template <typename T>
__device__ __forceinline__ T WarpSum(T v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = v + __shfl_xor_sync(kFullMask, v, offset);
  }
  return v;
}

__device__ __forceinline__ unsigned int WarpMax(unsigned int v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = max(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// What per-element passes accumulate per thread.
struct ThreadTally {
  unsigned int max_bits = 0;
  unsigned long long nonfinite = 0;
  unsigned long long zeros = 0;
};

// The block's tally, valid in thread 0. Every thread of the block must call it; blockDim.x is a
// multiple of 32 and at most 1024.
__device__ inline ThreadTally BlockTally(ThreadTally t) {
  __shared__ unsigned int max_bits[32];
  __shared__ unsigned long long nonfinite[32];
  __shared__ unsigned long long zeros[32];
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  t.max_bits = WarpMax(t.max_bits);
  t.nonfinite = WarpSum(t.nonfinite);
  t.zeros = WarpSum(t.zeros);
  if (lane == 0) {
    max_bits[warp] = t.max_bits;
    nonfinite[warp] = t.nonfinite;
    zeros[warp] = t.zeros;
  }
  __syncthreads();
  ThreadTally block;
  if (warp == 0) {
    const int warps = blockDim.x / kWarpSize;
    block.max_bits = lane < warps ? max_bits[lane] : 0u;
    block.nonfinite = lane < warps ? nonfinite[lane] : 0ull;
    block.zeros = lane < warps ? zeros[lane] : 0ull;
    block.max_bits = WarpMax(block.max_bits);
    block.nonfinite = WarpSum(block.nonfinite);
    block.zeros = WarpSum(block.zeros);
  }
  return block;
}

// Exclusive prefix sum over the threads of a block (blockDim.x a multiple of 32, at most 1024):
// returns the sum of `v` over threads < threadIdx.x and sets *total to the sum over all. Every
// thread must call it; `scratch` is 32 Ts of shared memory, free again on return.
template <typename T>
__device__ T BlockExclusiveScan(T v, T* scratch, T* total) {
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  T inclusive = v;
#pragma unroll
  for (int offset = 1; offset < kWarpSize; offset *= 2) {
    const T up = __shfl_up_sync(kFullMask, inclusive, offset);
    if (lane >= offset) inclusive = inclusive + up;
  }
  T exclusive = __shfl_up_sync(kFullMask, inclusive, 1);
  if (lane == 0) exclusive = T(0);
  if (lane == kWarpSize - 1) scratch[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? scratch[lane] : T(0);
#pragma unroll
    for (int offset = 1; offset < kWarpSize; offset *= 2) {
      const T up = __shfl_up_sync(kFullMask, w, offset);
      if (lane >= offset) w = w + up;
    }
    scratch[lane] = w;  // inclusive over warps
  }
  __syncthreads();
  const T before_warp = warp == 0 ? T(0) : scratch[warp - 1];
  *total = scratch[warps - 1];
  __syncthreads();  // scratch may be reused after return
  return before_warp + exclusive;
}

}  // namespace qcal::kernels::cuda::internal

#endif  // QCAL_KERNELS_CUDA_INTERNAL_BLOCK_REDUCE_CUH_
