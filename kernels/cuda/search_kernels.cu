// The amax searches on the device (see ../amax_search.h for what runs where): prefix and suffix
// tables in one block of kScanThreads (each thread a contiguous run of bins, then a block scan),
// the per-candidate scores one warp per candidate, and the percentile's sequential cdf.
// Formulas, candidates and float32 roundings are those of kernels/entropy_amax.cc and
// kernels/mse_amax.cc; doubles are never contracted into FMA (built with --fmad=false).
#include <math_constants.h>

#include "kernels/cuda/internal/block_reduce.cuh"
#include "kernels/cuda/internal/grid.cuh"
#include "kernels/cuda/internal/launch.h"

namespace qcal::kernels::cuda::internal {
namespace {

constexpr int kScanThreads = 1024;
constexpr int kWarpsPerBlock = kThreads / kWarpSize;

constexpr float kZeroAmax = 0x1p-24f;  // fake_tensor_quant's epsilon
// Adding and subtracting 1.5 * 2^23 rounds |t| < 2^22 to the nearest integer, ties to even
// (mse_amax.cc's rounding, which matches torch.round).
constexpr float kRoundMagic = 0x1.8p23f;
constexpr float kRoundLimit = 0x1p22f;

// This thread's contiguous run [*lo, *hi) of `bins` bins, in thread order.
__device__ __forceinline__ void ThreadBins(int64_t bins, int64_t* lo, int64_t* hi) {
  const int64_t per = (bins + kScanThreads - 1) / kScanThreads;
  const int64_t begin = static_cast<int64_t>(threadIdx.x) * per;
  *lo = begin < bins ? begin : bins;
  *hi = *lo + per < bins ? *lo + per : bins;
}

// The entropy search's working copy of the counts: the zero bin takes its neighbour's count.
__device__ __forceinline__ unsigned long long EntropyCount(const unsigned long long* counts,
                                                           int64_t bins, int64_t j) {
  return counts[(j == 0 && bins > 1) ? 1 : j];
}

__device__ __forceinline__ double HLogH(unsigned long long h) {
  const double hd = static_cast<double>(h);
  return __dmul_rn(hd, log(hd));
}

__global__ void __launch_bounds__(kScanThreads)
    EntropyPrefixKernel(const unsigned long long* counts, int64_t bins, double* count_prefix,
                        double* hlogh_prefix, double* occupied_prefix) {
  __shared__ unsigned long long scan_u[32];
  __shared__ double scan_d[32];
  int64_t lo;
  int64_t hi;
  ThreadBins(bins, &lo, &hi);
  unsigned long long count = 0;
  unsigned long long occupied = 0;
  double hlogh = 0.0;
  for (int64_t j = lo; j < hi; ++j) {
    const unsigned long long h = EntropyCount(counts, bins, j);
    count += h;
    if (h != 0) {
      ++occupied;
      hlogh = __dadd_rn(hlogh, HLogH(h));
    }
  }
  unsigned long long total_u;
  double total_d;
  count = BlockExclusiveScan(count, scan_u, &total_u);
  occupied = BlockExclusiveScan(occupied, scan_u, &total_u);
  hlogh = BlockExclusiveScan(hlogh, scan_d, &total_d);
  if (threadIdx.x == 0) {
    count_prefix[0] = 0.0;
    hlogh_prefix[0] = 0.0;
    occupied_prefix[0] = 0.0;
  }
  for (int64_t j = lo; j < hi; ++j) {
    const unsigned long long h = EntropyCount(counts, bins, j);
    count += h;
    if (h != 0) {
      ++occupied;
      hlogh = __dadd_rn(hlogh, HLogH(h));
    }
    // Integer sums are exact, as the CPU's double sums of integers below 2^53.
    count_prefix[j + 1] = static_cast<double>(count);
    hlogh_prefix[j + 1] = hlogh;
    occupied_prefix[j + 1] = static_cast<double>(occupied);
  }
}

// ceil(g * i / 2^shift): the first bin of quantization group g for candidate i.
__device__ __forceinline__ int64_t GroupStart(int64_t g, int64_t i, int shift) {
  return (g * i + (int64_t{1} << shift) - 1) >> shift;
}

__global__ void __launch_bounds__(kThreads)
    KlCandidatesKernel(const double* count_prefix, const double* hlogh_prefix,
                       const double* occupied_prefix, int64_t bins, int64_t first, int64_t stride,
                       int64_t num_candidates, int shift, double* out) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t levels = int64_t{1} << shift;
  const int64_t warps = GridThreads() / kWarpSize;
  // Every branch below depends on k only: the whole warp takes it, as WarpSum needs.
  for (int64_t k = GridThread() / kWarpSize; k < num_candidates; k += warps) {
    const int64_t i = first + k * stride;
    const double total = count_prefix[bins];
    const double below = count_prefix[i];
    double divergence;
    if (total == 0.0 || below == 0.0) {
      divergence = CUDART_NAN;
    } else {
      const double last = count_prefix[i] - count_prefix[i - 1];
      const double beyond = total - below;
      if (last == 0.0 && beyond > 0.0) {
        divergence = CUDART_INF;
      } else if (levels >= i) {
        // Each bin is a group of its own: only the folded last bin diverges.
        const double folded = last + beyond;
        const double folded_term = last > 0.0 ? __dmul_rn(folded, log(folded / last)) : 0.0;
        divergence = folded_term / total + log(below / total);
      } else {
        double groups = 0.0;
        for (int64_t g = lane; g < levels; g += kWarpSize) {
          const int64_t b0 = GroupStart(g, i, shift);
          const int64_t b1 = GroupStart(g + 1, i, shift);
          const double group = count_prefix[b1] - count_prefix[b0];
          if (group > 0.0) {
            const double occupied = occupied_prefix[b1] - occupied_prefix[b0];
            groups = __dadd_rn(groups, __dmul_rn(group, log(group / occupied)));
          }
        }
        groups = WarpSum(groups);
        double sum = hlogh_prefix[i - 1] - groups;
        if (last > 0.0) {
          const int64_t g = ((i - 1) << shift) / i;  // the last bin's group
          const int64_t b0 = GroupStart(g, i, shift);
          const int64_t b1 = GroupStart(g + 1, i, shift);
          const double q_last =
              (count_prefix[b1] - count_prefix[b0]) / (occupied_prefix[b1] - occupied_prefix[b0]);
          const double folded = last + beyond;
          sum = sum + (__dmul_rn(last, log(q_last)) + __dmul_rn(folded, log(folded / q_last)));
        }
        divergence = sum / total + log(below / total);
      }
    }
    if (lane == 0) out[k] = divergence;
  }
}

__global__ void __launch_bounds__(kScanThreads)
    MseTablesKernel(const unsigned long long* counts, const float* centers, int64_t bins,
                    MseTables t) {
  __shared__ unsigned long long scan_u[32];
  __shared__ double scan_d[32];
  __shared__ double reversed[3][kScanThreads];
  int64_t lo;
  int64_t hi;
  ThreadBins(bins, &lo, &hi);
  unsigned long long occupied = 0;
  double sums[3] = {0.0, 0.0, 0.0};  // w, w c, w c^2 over this thread's bins, from the top
  for (int64_t k = hi - 1; k >= lo; --k) {
    const double w = static_cast<double>(counts[k]);
    const double c = centers[k];
    const double wc = __dmul_rn(w, c);
    sums[0] = __dadd_rn(sums[0], w);
    sums[1] = __dadd_rn(sums[1], wc);
    sums[2] = __dadd_rn(sums[2], __dmul_rn(wc, c));
    occupied += counts[k] != 0 ? 1 : 0;
  }
  unsigned long long total_occupied;
  occupied = BlockExclusiveScan(occupied, scan_u, &total_occupied);

  // The sums over the threads above this one: an exclusive scan in reversed thread order.
  const int r = kScanThreads - 1 - static_cast<int>(threadIdx.x);
  for (int s = 0; s < 3; ++s) reversed[s][r] = sums[s];
  __syncthreads();
  double above[3];
  for (int s = 0; s < 3; ++s) {
    double total;
    above[s] = BlockExclusiveScan(reversed[s][threadIdx.x], scan_d, &total);
  }
  for (int s = 0; s < 3; ++s) reversed[s][threadIdx.x] = above[s];
  __syncthreads();
  for (int s = 0; s < 3; ++s) above[s] = reversed[s][r];

  unsigned long long next = occupied;
  for (int64_t k = lo; k < hi; ++k) {
    t.occupied_below[k] = static_cast<long long>(next);
    if (counts[k] != 0) {
      t.occupied_centers[next] = centers[k];
      t.occupied_weights[next] = static_cast<double>(counts[k]);
      ++next;
    }
  }
  if (threadIdx.x == 0) {
    t.occupied_below[bins] = static_cast<long long>(total_occupied);
    t.suffix_w[bins] = 0.0;
    t.suffix_wc[bins] = 0.0;
    t.suffix_wcc[bins] = 0.0;
  }
  for (int64_t k = hi - 1; k >= lo; --k) {
    const double w = static_cast<double>(counts[k]);
    const double c = centers[k];
    const double wc = __dmul_rn(w, c);
    above[0] = __dadd_rn(above[0], w);
    above[1] = __dadd_rn(above[1], wc);
    above[2] = __dadd_rn(above[2], __dmul_rn(wc, c));
    t.suffix_w[k] = above[0];
    t.suffix_wc[k] = above[1];
    t.suffix_wcc[k] = above[2];
  }
}

// fake_tensor_quant of one center in float32, as mse_amax.cc's FakeQuantScalar.
__device__ __forceinline__ float FakeQuantCenter(float c, float round_scale, float divide_scale,
                                                 float lo, float hi) {
  float t = __fmul_rn(c, round_scale);
  t = t < -kRoundLimit ? -kRoundLimit : t;
  t = t > kRoundLimit ? kRoundLimit : t;
  float q = __fsub_rn(__fadd_rn(t, kRoundMagic), kRoundMagic);
  q = q < lo ? lo : q;
  q = q > hi ? hi : q;
  return __fdiv_rn(q, divide_scale);
}

__global__ void __launch_bounds__(kThreads)
    MseCandidatesKernel(const float* centers, MseTables t, int64_t bins, int64_t first,
                        int64_t stride, int64_t num_candidates, float bound, float lo,
                        double* out) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps = GridThreads() / kWarpSize;
  for (int64_t k = GridThread() / kWarpSize; k < num_candidates; k += warps) {
    const int64_t i = first + k * stride;
    const float amax = centers[i];
    const bool zero = amax <= kZeroAmax;
    const float scale = __fdiv_rn(bound, amax);
    const float round_scale = zero ? 0.0f : scale;
    const float divide_scale = zero ? 1.0f : scale;
    // Bins from `split` up all quantize to one value v (the bound, or 0 for a zero amax).
    const int64_t split = zero ? 0 : i;
    const double v = zero ? 0.0 : static_cast<double>(__fdiv_rn(bound, scale));
    const double clipped = __dadd_rn(__dsub_rn(__dmul_rn(__dmul_rn(v, v), t.suffix_w[split]),
                                               __dmul_rn(__dmul_rn(2.0, v), t.suffix_wc[split])),
                                     t.suffix_wcc[split]);
    const int64_t below = t.occupied_below[split];
    double error = 0.0;
    for (int64_t m = lane; m < below; m += kWarpSize) {
      const float c = t.occupied_centers[m];
      const float fake = FakeQuantCenter(c, round_scale, divide_scale, lo, bound);
      const double d = static_cast<double>(fake) - static_cast<double>(c);
      error = __dadd_rn(error, __dmul_rn(t.occupied_weights[m], __dmul_rn(d, d)));
    }
    error = WarpSum(error);
    if (lane == 0) out[k] = (error + clipped) / static_cast<double>(bins);
  }
}

__global__ void __launch_bounds__(kScanThreads)
    PercentileKernel(const unsigned long long* counts, int64_t bins, unsigned long long total,
                     double target, double* terms, PercentileResult* result) {
  const double total_d = static_cast<double>(total);
  for (int64_t i = threadIdx.x; i < bins; i += blockDim.x) {
    terms[i] = static_cast<double>(counts[i]) / total_d;
  }
  __syncthreads();  // makes the block's global writes visible to thread 0
  if (threadIdx.x != 0) return;
  double cdf = 0.0;
  for (int64_t i = 0; i < bins; ++i) {
    cdf = __dadd_rn(cdf, terms[i]);
    if (cdf >= target) {
      result->index = i;
      result->cdf = cdf;
      return;
    }
  }
  // Rounding can leave the last cdf value below the target: numpy then returns len(cdf).
  result->index = bins;
  result->cdf = cdf;
}

}  // namespace

cudaError_t LaunchEntropyPrefix(const unsigned long long* counts, int64_t bins,
                                double* count_prefix, double* hlogh_prefix, double* occupied_prefix,
                                const Launch& launch) {
  EntropyPrefixKernel<<<1, kScanThreads, 0, launch.stream>>>(counts, bins, count_prefix,
                                                             hlogh_prefix, occupied_prefix);
  return cudaGetLastError();
}

cudaError_t LaunchKlCandidates(const double* count_prefix, const double* hlogh_prefix,
                               const double* occupied_prefix, int64_t bins, int64_t first,
                               int64_t stride, int64_t num_candidates, int shift, double* out,
                               const Launch& launch) {
  if (num_candidates <= 0) return cudaSuccess;
  const int blocks = GridFor(num_candidates, kWarpsPerBlock, launch.max_blocks);
  KlCandidatesKernel<<<blocks, kThreads, 0, launch.stream>>>(
      count_prefix, hlogh_prefix, occupied_prefix, bins, first, stride, num_candidates, shift, out);
  return cudaGetLastError();
}

cudaError_t LaunchMseTables(const unsigned long long* counts, const float* centers, int64_t bins,
                            const MseTables& tables, const Launch& launch) {
  MseTablesKernel<<<1, kScanThreads, 0, launch.stream>>>(counts, centers, bins, tables);
  return cudaGetLastError();
}

cudaError_t LaunchMseCandidates(const float* centers, const MseTables& tables, int64_t bins,
                                int64_t first, int64_t stride, int64_t num_candidates, float bound,
                                float lo, double* out, const Launch& launch) {
  if (num_candidates <= 0) return cudaSuccess;
  const int blocks = GridFor(num_candidates, kWarpsPerBlock, launch.max_blocks);
  MseCandidatesKernel<<<blocks, kThreads, 0, launch.stream>>>(centers, tables, bins, first, stride,
                                                              num_candidates, bound, lo, out);
  return cudaGetLastError();
}

cudaError_t LaunchPercentile(const unsigned long long* counts, int64_t bins,
                             unsigned long long total, double target, double* terms,
                             PercentileResult* result, const Launch& launch) {
  PercentileKernel<<<1, kScanThreads, 0, launch.stream>>>(counts, bins, total, target, terms,
                                                          result);
  return cudaGetLastError();
}

}  // namespace qcal::kernels::cuda::internal
