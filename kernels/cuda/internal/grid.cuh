// Launch shapes shared by the .cu files (internal, nvcc only).
#ifndef QCAL_KERNELS_CUDA_INTERNAL_GRID_CUH_
#define QCAL_KERNELS_CUDA_INTERNAL_GRID_CUH_

#include <cuda_runtime.h>

#include <cstdint>

namespace qcal::kernels::cuda::internal {

// Threads per block of the element-wise kernels.
inline constexpr int kThreads = 256;

// Blocks for `items` work items at `per_block` items per block, at least 1, at most max_blocks
// (the kernels loop grid-stride over the rest).
inline int GridFor(int64_t items, int64_t per_block, int max_blocks) {
  const int64_t blocks = (items + per_block - 1) / per_block;
  if (blocks < 1) return 1;
  return blocks < max_blocks ? static_cast<int>(blocks) : (max_blocks < 1 ? 1 : max_blocks);
}

// This thread's index in the grid and the grid's size, as int64.
__device__ __forceinline__ int64_t GridThread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t GridThreads() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

}  // namespace qcal::kernels::cuda::internal

#endif  // QCAL_KERNELS_CUDA_INTERNAL_GRID_CUH_
