// cuda::Histogram in the mergeable layout, and the state export and import of both layouts.
#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/histogram.h"
#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/cuda_status.h"
#include "kernels/cuda/internal/device_buffer.h"
#include "kernels/cuda/internal/launch.h"
#include "kernels/cuda/internal/stager.h"
#include "kernels/mergeable_binning.h"
#include "kernels/mergeable_histogram.h"

namespace qcal::kernels::cuda {
namespace {

using internal::DeviceBatchStats;
using internal::DeviceBuffer;
using internal::Launch;

absl::Status TotalOverflow() {
  return absl::OutOfRangeError(
      "mergeable histogram: merged counts would pass 2^64 - 1 values; nothing was merged");
}

}  // namespace

absl::Status Histogram::CombineMergeable(internal::Stager& stager, unsigned long long* scratch,
                                         int k, int64_t bins, unsigned long long add_to_first,
                                         float abs_max) {
  const internal::ContextImpl& impl = context_->impl();
  const int64_t old_bins = num_bins();
  if (counts_ == nullptr) add_to_first += pending_zeros_;
  if (counts_ != nullptr && k == exponent_ && bins == old_bins) {
    QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchCombineCounts(
        counts_->as<unsigned long long>(), scratch, bins, counts_->as<unsigned long long>(), bins,
        add_to_first, stager.launch()));
    QCAL_CUDA_RETURN_IF_NOT_OK(stager.Synchronize());
  } else {
    const unsigned long long* old = nullptr;
    int64_t kept_bins = 0;
    if (counts_ != nullptr && k == exponent_) {
      old = counts_->as<unsigned long long>();
      kept_bins = old_bins;
    } else if (counts_ != nullptr) {
      // A coarser k: the old counts are summed into the batch's scratch at their new bins.
      QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(
          internal::LaunchCoarsenAdd(scratch, bins, counts_->as<unsigned long long>(), old_bins,
                                     k - exponent_, stager.launch()));
    }
    QCAL_CUDA_ASSIGN_OR_RETURN(
        std::unique_ptr<DeviceBuffer> counts,
        DeviceBuffer::Allocate(impl, bins * static_cast<int64_t>(sizeof(uint64_t))));
    QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchCombineCounts(counts->as<unsigned long long>(),
                                                                   scratch, bins, old, kept_bins,
                                                                   add_to_first, stager.launch()));
    QCAL_CUDA_RETURN_IF_NOT_OK(stager.Synchronize());
    counts_ = std::move(counts);
    if (k != exponent_ || bins != old_bins) edges_ = MergeableEdges(k, bins);
  }
  exponent_ = k;
  abs_max_ = abs_max;
  pending_zeros_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<CollectStats> Histogram::CollectMergeable(const BatchRef& batch) {
  const internal::ContextImpl& impl = context_->impl();
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());
  // The max first: the batch is binned at the exponent of the merged max, which gives the same
  // counts as binning at its own and coarsening (floor(floor(v / 2^e) / 2^d) = floor(v / 2^(e+d))).
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ResetStats());
  DeviceBatchStats* device_stats = stager->stats();
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ForEachPiece(
      batch, [&](const void* data, int64_t, int64_t count, const Launch& launch) {
        return internal::LaunchAbsMax(data, batch.dtype, count, &device_stats->max_bits,
                                      &device_stats->nonfinite, launch);
      }));
  QCAL_CUDA_ASSIGN_OR_RETURN(const DeviceBatchStats range, stager->ReadStats());
  CollectStats stats{.elements = batch.count, .nonfinite = static_cast<int64_t>(range.nonfinite)};
  const uint64_t finite = static_cast<uint64_t>(batch.count) - range.nonfinite;
  const float batch_max = std::bit_cast<float>(range.max_bits);
  if (batch_max == 0.0f) {
    const uint64_t zeros = options_.skip_zeros ? 0 : finite;
    uint64_t total = 0;
    if (__builtin_add_overflow(total_, zeros, &total)) return TotalOverflow();
    if (counts_ == nullptr) {
      pending_zeros_ += zeros;
    } else if (zeros != 0) {
      QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchCombineCounts(
          counts_->as<unsigned long long>(), counts_->as<unsigned long long>(), num_bins(), nullptr,
          0, zeros, stager->launch()));
      QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
    }
    total_ = total;
    collected_ = true;
    return stats;
  }
  const float abs_max = std::max(abs_max_, batch_max);
  const int k = MergeableExponent(abs_max, options_.num_bins);
  const int64_t bins = MergeableBinCount(abs_max, k);
  const MergeableScale scale = MergeableScaleFor(k);
  QCAL_CUDA_ASSIGN_OR_RETURN(unsigned long long* scratch, stager->ZeroedBins(bins));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ResetStats());
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ForEachPiece(
      batch, [&](const void* data, int64_t, int64_t count, const Launch& launch) {
        return internal::LaunchBinMergeable(data, batch.dtype, count, scale.first, scale.second,
                                            bins, scratch, device_stats, launch);
      }));
  QCAL_CUDA_ASSIGN_OR_RETURN(const DeviceBatchStats read, stager->ReadStats());
  const uint64_t added = options_.skip_zeros ? finite - read.zeros : finite;
  uint64_t total = 0;
  if (__builtin_add_overflow(total_, added, &total)) return TotalOverflow();
  QCAL_CUDA_RETURN_IF_NOT_OK(
      CombineMergeable(*stager, scratch, k, bins, options_.skip_zeros ? 0 : read.zeros, abs_max));
  total_ = total;
  collected_ = true;
  return stats;
}

absl::StatusOr<MergeableState> Histogram::ExportMergeable() const {
  if (options_.layout != HistogramLayout::kMergeable) {
    return absl::FailedPreconditionError(
        "ExportMergeable: the histogram is in the reference layout, not the mergeable one");
  }
  QCAL_CUDA_ASSIGN_OR_RETURN(std::vector<uint64_t> counts, Counts());
  return MergeableState{.exponent = exponent_,
                        .counts = std::move(counts),
                        .abs_max = abs_max_,
                        .zeros = pending_zeros_};
}

absl::Status Histogram::MergeMergeable(const MergeableState& state) {
  if (options_.layout != HistogramLayout::kMergeable) {
    return absl::FailedPreconditionError(
        "a mergeable histogram state cannot be merged into a histogram in the reference layout");
  }
  QCAL_CUDA_RETURN_IF_NOT_OK(ValidateMergeableState(state, options_.num_bins));
  uint64_t total = total_;
  for (const uint64_t c : state.counts) {
    if (__builtin_add_overflow(total, c, &total)) return TotalOverflow();
  }
  if (__builtin_add_overflow(total, state.zeros, &total)) return TotalOverflow();
  const internal::ContextImpl& impl = context_->impl();
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());
  if (state.abs_max == 0.0f) {
    if (counts_ == nullptr) {
      pending_zeros_ += state.zeros;
    } else if (state.zeros != 0) {
      QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchCombineCounts(
          counts_->as<unsigned long long>(), counts_->as<unsigned long long>(), num_bins(), nullptr,
          0, state.zeros, stager->launch()));
      QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
    }
  } else {
    const float abs_max = std::max(abs_max_, state.abs_max);
    const int k = MergeableExponent(abs_max, options_.num_bins);
    const int64_t bins = MergeableBinCount(abs_max, k);
    // The state's counts at k, summed on the host (the CPU twin's own sums), then uploaded.
    const std::vector<uint64_t> host = CoarsenMergeableCounts(state, k, bins);
    QCAL_CUDA_ASSIGN_OR_RETURN(unsigned long long* scratch, stager->ZeroedBins(bins));
    QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(scratch, host.data(), host.size() * sizeof(uint64_t),
                                              cudaMemcpyHostToDevice, stager->stream()));
    QCAL_CUDA_RETURN_IF_NOT_OK(CombineMergeable(*stager, scratch, k, bins, 0, abs_max));
  }
  total_ = total;
  collected_ = true;
  return absl::OkStatus();
}

absl::StatusOr<kernels::Histogram::ReferenceState> Histogram::ExportReference() const {
  if (options_.layout != HistogramLayout::kReference) {
    return absl::FailedPreconditionError(
        "ExportReference: the histogram is in the mergeable layout, not the reference one");
  }
  QCAL_CUDA_ASSIGN_OR_RETURN(std::vector<uint64_t> counts, Counts());
  return kernels::Histogram::ReferenceState{.counts = std::move(counts),
                                            .edges = edges_,
                                            .abs_max = abs_max_,
                                            .total = total_,
                                            .pending_zeros = pending_zeros_,
                                            .collected = collected_};
}

absl::Status Histogram::RestoreReference(const kernels::Histogram::ReferenceState& state) {
  // The CPU twin checks the state (its errors, word for word).
  kernels::Histogram check(options_);
  QCAL_CUDA_RETURN_IF_NOT_OK(check.RestoreReference(state));
  std::unique_ptr<DeviceBuffer> counts;
  if (!state.counts.empty()) {
    const internal::ContextImpl& impl = context_->impl();
    QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());
    const int64_t bytes = static_cast<int64_t>(state.counts.size() * sizeof(uint64_t));
    QCAL_CUDA_ASSIGN_OR_RETURN(counts, DeviceBuffer::Allocate(impl, bytes));
    QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(counts->data(), state.counts.data(),
                                              static_cast<size_t>(bytes), cudaMemcpyHostToDevice,
                                              stager->stream()));
    QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
  }
  counts_ = std::move(counts);
  edges_ = state.edges;
  abs_max_ = state.abs_max;
  total_ = state.total;
  pending_zeros_ = state.pending_zeros;
  collected_ = state.collected;
  exponent_ = 0;
  return absl::OkStatus();
}

}  // namespace qcal::kernels::cuda
