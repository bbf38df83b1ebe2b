// Histogram of |x| over [0, last edge] with its counts in device memory: the CUDA twin of
// kernels::Histogram (pytorch-quantization's HistogramCalibrator collection, torch_hist=True).
// Same options, same errors, and the same counts, edges, abs_max and total bit for bit after any
// sequence of batches (see kernels/histogram.h for the arithmetic and where qcal differs from
// the reference).
//
//   auto hist = qcal::kernels::cuda::Histogram::Create(gpu, {.num_bins = 2048});
//   auto stats = (*hist)->Collect(batch);         // a float32 host span, or any BatchRef
//   auto counts = (*hist)->Counts();              // copied back: calib_hist
//   (*hist)->Edges();                             // calib_bin_edges (kept on the host)
//
// On the device: one fused pass per batch finds max |x| and bins every value against the current
// range into per-block shared-memory bins (32-bit, flushed into 64-bit device counts: exact); a
// batch whose max lies beyond the last edge is binned once more against the grown range. The
// edges themselves are computed on the host by kernels/histogram_edges.h, the growth (and its
// coarsening past max_bins, to num_bins bins) by kernels/histogram_growth.h; coarsened counts are
// summed on the host (rare: only when growth passes max_bins).
//
// Options::layout kMergeable (kernels/mergeable_histogram.h): a max pass, then one pass that bins
// floor(|x| / 2^k) for the k of the merged max into per-block shared counts; the held counts are
// re-binned to a coarser k on the device (exact sums). Counts, edges, abs_max, total and pending
// zeros are the CPU twin's bit for bit, and ExportMergeable gives the same canonical state.
//
// Not thread-safe: callers serialise access to one instance (the Context is shared safely).
#ifndef QCAL_KERNELS_CUDA_HISTOGRAM_H_
#define QCAL_KERNELS_CUDA_HISTOGRAM_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/collect_stats.h"
#include "kernels/cuda/batch_ref.h"
#include "kernels/cuda/context.h"
#include "kernels/histogram.h"

namespace qcal::kernels::cuda {

namespace internal {
class DeviceBuffer;
class Stager;
}  // namespace internal

class Histogram {
 public:
  using Options = kernels::Histogram::Options;

  // INVALID_ARGUMENT for options kernels::Histogram::ValidateOptions refuses.
  static absl::StatusOr<std::unique_ptr<Histogram>> Create(std::shared_ptr<Context> context,
                                                           Options options);
  ~Histogram();
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Adds |x| of the finite values of one batch (any dtype, any memory: batch_ref.h).
  // Errors, state unchanged: INVALID_ARGUMENT for an empty batch and those of CheckBatchRef;
  // OUT_OF_RANGE as kernels::Histogram::Collect (growth past options.max_bins coarsens, the
  // same way); RESOURCE_EXHAUSTED when device memory runs out; INTERNAL for a CUDA failure.
  absl::StatusOr<CollectStats> Collect(const BatchRef& batch);
  absl::StatusOr<CollectStats> Collect(std::span<const float> x) {
    return Collect(BatchRef::Float32(x));
  }

  // As kernels::Histogram::Grow (and its errors; INTERNAL for a CUDA failure).
  absl::Status Grow(float new_max);

  // As kernels::Histogram's (and their errors; INTERNAL for a CUDA failure, RESOURCE_EXHAUSTED
  // when device memory runs out): the mergeable layout's state copied from the device, a
  // canonical state merged exactly into the device counts (checked on the host first; state
  // unchanged on error), and the reference layout's state out and back in.
  absl::StatusOr<MergeableState> ExportMergeable() const;
  absl::Status MergeMergeable(const MergeableState& state);
  absl::StatusOr<kernels::Histogram::ReferenceState> ExportReference() const;
  absl::Status RestoreReference(const kernels::Histogram::ReferenceState& state);

  // calib_hist, copied from the device; empty until a non-zero value has been binned.
  // INTERNAL for a CUDA failure.
  absl::StatusOr<std::vector<uint64_t>> Counts() const;
  // The counts where they live: num_bins() uint64 values in device memory (null without bins).
  // Valid until the next call that changes the histogram; the amax searches take it as is.
  std::span<const uint64_t> DeviceCounts() const;
  int64_t num_bins() const { return static_cast<int64_t>(edges_.empty() ? 0 : edges_.size() - 1); }
  // calib_bin_edges: num_bins() + 1 float32 edges, edges[0] == 0 (empty without bins).
  std::span<const float> Edges() const { return edges_; }
  float abs_max() const { return abs_max_; }
  uint64_t total() const { return total_; }
  uint64_t pending_zeros() const { return pending_zeros_; }
  bool empty() const { return total_ == 0 && !collected_; }
  const Options& options() const { return options_; }
  const Context& context() const { return *context_; }
  // Drops the state (and frees the counts' device memory).
  void Reset();

 private:
  Histogram(std::shared_ptr<Context> context, Options options);

  // The mergeable layout (histogram_mergeable.cc).
  absl::StatusOr<CollectStats> CollectMergeable(const BatchRef& batch);
  // Makes the held counts those of exponent k and `bins` bins plus scratch[0..bins) (binned at
  // k) plus add_to_first in bin 0 (pending zeros are added too when there were no bins); sets
  // abs_max. The caller has checked that the total fits.
  absl::Status CombineMergeable(internal::Stager& stager, unsigned long long* scratch, int k,
                                int64_t bins, unsigned long long add_to_first, float abs_max);

  // Constant after construction.
  const std::shared_ptr<Context> context_;
  const Options options_;

  std::unique_ptr<internal::DeviceBuffer> counts_;
  std::vector<float> edges_;
  float abs_max_ = 0.0f;
  uint64_t total_ = 0;
  uint64_t pending_zeros_ = 0;
  bool collected_ = false;
  // kMergeable: the exponent k of the bins, 0 without bins.
  int exponent_ = 0;
};

}  // namespace qcal::kernels::cuda

#endif  // QCAL_KERNELS_CUDA_HISTOGRAM_H_
