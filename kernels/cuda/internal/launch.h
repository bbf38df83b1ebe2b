// The kernels of kernels/cuda as host functions (internal): each enqueues its kernel(s) on
// `launch.stream` and returns the launch's error (cudaGetLastError), never waiting for the
// device. Implemented in the .cu files; callers are the library's .cc files, which turn errors
// into absl::Status (cuda_status.h) and own all memory.
//
// Counts are 64-bit (unsigned long long, the type CUDA's atomics take); element counts of any
// size are split into launches of at most kMaxLaunchElements, so that per-block 32-bit counters
// cannot wrap.
#ifndef QCAL_KERNELS_CUDA_INTERNAL_LAUNCH_H_
#define QCAL_KERNELS_CUDA_INTERNAL_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/dtype.h"

namespace qcal::kernels::cuda::internal {

inline constexpr int64_t kMaxLaunchElements = int64_t{1} << 30;

struct Launch {
  cudaStream_t stream = nullptr;
  // Grid-size cap: the device's multiprocessors times the blocks that fill one.
  int max_blocks = 1;
};

// What one pass over a batch found, accumulated on the device (zeroed by the caller).
struct DeviceBatchStats {
  unsigned int max_bits = 0;  // largest finite |x|, as float bits (they order like the values)
  unsigned int unused = 0;
  unsigned long long nonfinite = 0;
  unsigned long long zeros = 0;  // exact zeros (+0 and -0)
  unsigned long long negatives = 0;
};

// max |x| of the finite values into *max_bits (atomicMax on float bits) and the count of NaN and
// +-inf into *nonfinite (atomicAdd).
cudaError_t LaunchAbsMax(const void* data, DType dtype, int64_t count, unsigned int* max_bits,
                         unsigned long long* nonfinite, const Launch& launch);

// Adds the bins of |x| against [0, range_max] to counts[0..num_bins) with the reference's
// arithmetic (bin = trunc(float32(float32(|x| / range_max) * num_bins)), clamped to the last
// bin), leaving out zeros and non-finite values, which go (with the max) into *stats.
// Requires range_max > 0 finite and 1 <= num_bins <= 2^24.
cudaError_t LaunchBinAbs(const void* data, DType dtype, int64_t count, float range_max,
                         int64_t num_bins, unsigned long long* counts, DeviceBatchStats* stats,
                         const Launch& launch);

// The mergeable layout's bins (kernels/mergeable_histogram.h): adds floor(|x| / 2^k), computed
// as float32 (|x| * first) * second with kernels::MergeableScaleFor(k), to
// counts[0..num_bins) (clamped to the last bin), leaving out zeros and non-finite values, which go
// (with the max) into *stats. Requires 1 <= num_bins <= 2^25.
cudaError_t LaunchBinMergeable(const void* data, DType dtype, int64_t count, float first,
                               float second, int64_t num_bins, unsigned long long* counts,
                               DeviceBatchStats* stats, const Launch& launch);

// into[i >> shift] += from[i] for i < from_bins (atomic adds: exact, any order): counts at
// exponent e re-binned at e + shift. Requires shift >= 0 and (from_bins - 1) >> shift < into_bins.
cudaError_t LaunchCoarsenAdd(unsigned long long* into, int64_t into_bins,
                             const unsigned long long* from, int64_t from_bins, int shift,
                             const Launch& launch);

// dst[b] = src[b] + (b < old_bins ? old[b] : 0) + (b == 0 ? add_to_first : 0) for b < bins;
// old may be dst (an in-place add) or null (old_bins 0). Requires old_bins <= bins.
cudaError_t LaunchCombineCounts(unsigned long long* dst, const unsigned long long* src,
                                int64_t bins, const unsigned long long* old, int64_t old_bins,
                                unsigned long long add_to_first, const Launch& launch);

// A batch's axes for per-channel max, as kernels::MaxCalibrator merges them: runs of axes from
// outermost to innermost, each either reduced (channel_stride 0) or kept (the channel distance
// between its consecutive indices).
inline constexpr int kMaxRuns = 16;
struct ChannelLayout {
  int num_runs = 0;
  // Runs before this one are all reduced: their digits are never needed.
  int first_kept = 0;
  int64_t size[kMaxRuns] = {};
  int64_t channel_stride[kMaxRuns] = {};
};

// Folds max |x| per channel of elements [offset, offset + count) of the batch (data points at
// element `offset`) into bits[channel] (atomicMax on float bits); NaN and +-inf are counted into
// *nonfinite.
cudaError_t LaunchChannelAbsMax(const void* data, DType dtype, int64_t offset, int64_t count,
                                const ChannelLayout& layout, int64_t channels, unsigned int* bits,
                                unsigned long long* nonfinite, const Launch& launch);

// Adds the number of values < 0 (NaN and -0.0 are not) to *negatives.
cudaError_t LaunchCountNegative(const void* data, DType dtype, int64_t count,
                                unsigned long long* negatives, const Launch& launch);

// *total += sum of counts[0..bins) (exact, 64-bit).
cudaError_t LaunchSumCounts(const unsigned long long* counts, int64_t bins,
                            unsigned long long* total, const Launch& launch);

// The entropy search's prefix sums over h (counts with h[0] := h[1] when bins > 1), each
// bins + 1 long: count_prefix[j] = sum h[<j], hlogh_prefix[j] = sum h ln h, occupied_prefix[j] =
// number of h[<j] != 0. One block.
cudaError_t LaunchEntropyPrefix(const unsigned long long* counts, int64_t bins,
                                double* count_prefix, double* hlogh_prefix, double* occupied_prefix,
                                const Launch& launch);

// out[k] = KL divergence of candidate i = first + k * stride, k < num_candidates, with
// 2^shift quantization levels (entropy_amax.cc's regrouped formula).
cudaError_t LaunchKlCandidates(const double* count_prefix, const double* hlogh_prefix,
                               const double* occupied_prefix, int64_t bins, int64_t first,
                               int64_t stride, int64_t num_candidates, int shift, double* out,
                               const Launch& launch);

// The mse search's tables (mse_amax.cc's MseTables) on the device.
struct MseTables {
  long long* occupied_below = nullptr;  // bins + 1: occupied bins with index < k
  float* occupied_centers = nullptr;    // bins (first occupied_below[bins] used)
  double* occupied_weights = nullptr;   // bins
  double* suffix_w = nullptr;           // bins + 1: sums over bins >= k of w, w c, w c^2
  double* suffix_wc = nullptr;
  double* suffix_wcc = nullptr;
};

// Fills `tables` from counts and the float32 bin centers. One block.
cudaError_t LaunchMseTables(const unsigned long long* counts, const float* centers, int64_t bins,
                            const MseTables& tables, const Launch& launch);

// out[k] = mse of candidate center i = first + k * stride (mean over the bins), k <
// num_candidates, fake-quantizing with `bound` and lower clamp `lo` (narrow range).
cudaError_t LaunchMseCandidates(const float* centers, const MseTables& tables, int64_t bins,
                                int64_t first, int64_t stride, int64_t num_candidates, float bound,
                                float lo, double* out, const Launch& launch);

struct PercentileResult {
  long long index = 0;
  double cdf = 0.0;
};

// The first i with cdf[i] >= target, cdf summed in bin order as numpy's cumsum (bins when
// none); `terms` is scratch of `bins` doubles, `total` the exact sum of the counts (> 0).
cudaError_t LaunchPercentile(const unsigned long long* counts, int64_t bins,
                             unsigned long long total, double target, double* terms,
                             PercentileResult* result, const Launch& launch);

// Fake quantization's element loop over the broadcast output shape.
inline constexpr int kMaxQuantDims = 16;
struct QuantLayout {
  int rank = 0;
  int64_t out_shape[kMaxQuantDims] = {};
  // Element strides of x and amax seen through the output shape (0 along broadcast axes).
  int64_t x_stride[kMaxQuantDims] = {};
  int64_t amax_stride[kMaxQuantDims] = {};
  // Shortcuts: x has the output's shape (x index = output index); amax has one element.
  bool x_dense = false;
  bool amax_scalar = false;
};

// out[o] = clamp(rint(x * round_scale[a]), lo, hi), divided by scale[a] when `fake`, for every
// output index o < total.
cudaError_t LaunchQuantize(const void* x, DType dtype, int64_t total, const QuantLayout& layout,
                           const float* round_scale, const float* scale, float lo, float hi,
                           bool fake, float* out, const Launch& launch);

// FP8 E4M3: out[o] = RoundToFp8E4M3(x / divisor[a]) (kernels/fp8_e4m3.h), times step[a] when
// `fake`.
cudaError_t LaunchQuantizeFp8(const void* x, DType dtype, int64_t total, const QuantLayout& layout,
                              const float* divisor, const float* step, bool fake, float* out,
                              const Launch& launch);

}  // namespace qcal::kernels::cuda::internal

#endif  // QCAL_KERNELS_CUDA_INTERNAL_LAUNCH_H_
