#include "kernels/cuda/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/cuda_status.h"
#include "kernels/cuda/internal/device_buffer.h"
#include "kernels/cuda/internal/launch.h"
#include "kernels/cuda/internal/stager.h"
#include "kernels/histogram_edges.h"
#include "kernels/histogram_growth.h"

namespace qcal::kernels::cuda {
namespace {

using internal::DeviceBatchStats;
using internal::DeviceBuffer;
using internal::Launch;
using internal::Stager;

// Bins the batch against [0, range_max] into zeroed scratch; the stats' zeros and non-finite
// counts are those of the batch.
absl::StatusOr<unsigned long long*> BinBatch(Stager& stager, const BatchRef& batch, float range_max,
                                             int64_t bins, DeviceBatchStats* read) {
  QCAL_CUDA_ASSIGN_OR_RETURN(unsigned long long* scratch, stager.ZeroedBins(bins));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager.ResetStats());
  DeviceBatchStats* stats = stager.stats();
  QCAL_CUDA_RETURN_IF_NOT_OK(stager.ForEachPiece(
      batch, [&](const void* data, int64_t, int64_t count, const Launch& launch) {
        return internal::LaunchBinAbs(data, batch.dtype, count, range_max, bins, scratch, stats,
                                      launch);
      }));
  QCAL_CUDA_ASSIGN_OR_RETURN(*read, stager.ReadStats());
  return scratch;
}

// Fresh device counts: scratch[0..bins) plus old[0..old_bins) plus `add_to_first` in bin 0.
absl::StatusOr<std::unique_ptr<DeviceBuffer>> CombinedCounts(
    const internal::ContextImpl& impl, Stager& stager, const unsigned long long* scratch,
    int64_t bins, const DeviceBuffer* old, int64_t old_bins, unsigned long long add_to_first) {
  QCAL_CUDA_ASSIGN_OR_RETURN(
      std::unique_ptr<DeviceBuffer> counts,
      DeviceBuffer::Allocate(impl, bins * static_cast<int64_t>(sizeof(uint64_t))));
  QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(
      internal::LaunchCombineCounts(counts->as<unsigned long long>(), scratch, bins,
                                    old != nullptr ? old->as<unsigned long long>() : nullptr,
                                    old != nullptr ? old_bins : 0, add_to_first, stager.launch()));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager.Synchronize());
  return counts;
}

// The device counts merged `merge` bins at a time (histogram_growth.h), by way of the host:
// coarsening happens only when growth passes max_bins (then down to num_bins bins), and the host
// sum is the CPU twin's own.
absl::StatusOr<std::unique_ptr<DeviceBuffer>> CoarsenedCounts(const internal::ContextImpl& impl,
                                                              Stager& stager,
                                                              const DeviceBuffer& counts,
                                                              int64_t bins, int64_t merge) {
  std::vector<uint64_t> host(static_cast<size_t>(bins));
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host.data(), counts.data(),
                                            host.size() * sizeof(uint64_t), cudaMemcpyDeviceToHost,
                                            stager.stream()));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager.Synchronize());
  const std::vector<uint64_t> merged = MergeAdjacentBins(host, merge);
  const int64_t bytes = static_cast<int64_t>(merged.size() * sizeof(uint64_t));
  QCAL_CUDA_ASSIGN_OR_RETURN(std::unique_ptr<DeviceBuffer> coarse,
                             DeviceBuffer::Allocate(impl, bytes));
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(coarse->data(), merged.data(),
                                            merged.size() * sizeof(uint64_t),
                                            cudaMemcpyHostToDevice, stager.stream()));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager.Synchronize());
  return coarse;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Histogram>> Histogram::Create(std::shared_ptr<Context> context,
                                                             Options options) {
  if (context == nullptr) return absl::InvalidArgumentError("no CUDA context");
  QCAL_CUDA_RETURN_IF_NOT_OK(kernels::Histogram::ValidateOptions(options));
  return std::unique_ptr<Histogram>(new Histogram(std::move(context), std::move(options)));
}

Histogram::Histogram(std::shared_ptr<Context> context, Options options)
    : context_(std::move(context)), options_(std::move(options)) {}

Histogram::~Histogram() = default;

void Histogram::Reset() {
  counts_.reset();
  edges_.clear();
  abs_max_ = 0.0f;
  total_ = 0;
  pending_zeros_ = 0;
  collected_ = false;
  exponent_ = 0;
}

std::span<const uint64_t> Histogram::DeviceCounts() const {
  if (counts_ == nullptr) return {};
  return {counts_->as<const uint64_t>(), static_cast<size_t>(num_bins())};
}

absl::StatusOr<std::vector<uint64_t>> Histogram::Counts() const {
  std::vector<uint64_t> counts(static_cast<size_t>(num_bins()));
  if (counts.empty()) return counts;
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, context_->impl().Acquire());
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(counts.data(), counts_->data(),
                                            counts.size() * sizeof(uint64_t),
                                            cudaMemcpyDeviceToHost, stager->stream()));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
  return counts;
}

absl::StatusOr<CollectStats> Histogram::Collect(const BatchRef& batch) {
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckBatchRef(batch));
  if (batch.count == 0) return absl::InvalidArgumentError("empty batch: a histogram needs values");
  if (options_.layout == HistogramLayout::kMergeable) return CollectMergeable(batch);
  const internal::ContextImpl& impl = context_->impl();
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());
  CollectStats stats{.elements = batch.count, .nonfinite = 0};
  const bool skip_zeros = options_.skip_zeros;
  // Values a batch adds to the counts: the finite ones, less the zeros when skipped.
  const auto binned = [&](const DeviceBatchStats& read) {
    return static_cast<uint64_t>(batch.count) - read.nonfinite - (skip_zeros ? read.zeros : 0);
  };

  if (counts_ != nullptr) {
    // Hot path: bin against the current range and find the max in the same pass; a batch beyond
    // the last edge is binned again against the grown range.
    DeviceBatchStats read;
    QCAL_CUDA_ASSIGN_OR_RETURN(unsigned long long* scratch,
                               BinBatch(*stager, batch, edges_.back(), num_bins(), &read));
    stats.nonfinite = static_cast<int64_t>(read.nonfinite);
    const float batch_max = std::bit_cast<float>(read.max_bits);
    const unsigned long long zeros = skip_zeros ? 0 : read.zeros;
    if (batch_max > edges_.back()) {
      QCAL_CUDA_ASSIGN_OR_RETURN(
          HistogramGrowth grown,
          PlanGrowth(edges_, batch_max, options_.bin_limit(), options_.num_bins));
      const int64_t bins = static_cast<int64_t>(grown.edges.size()) - 1;
      DeviceBatchStats again;
      QCAL_CUDA_ASSIGN_OR_RETURN(scratch,
                                 BinBatch(*stager, batch, grown.edges.back(), bins, &again));
      std::unique_ptr<DeviceBuffer> coarse;
      if (grown.merge > 1) {
        QCAL_CUDA_ASSIGN_OR_RETURN(
            coarse, CoarsenedCounts(impl, *stager, *counts_, num_bins(), grown.merge));
      }
      const int64_t old_bins = (num_bins() + grown.merge - 1) / grown.merge;
      QCAL_CUDA_ASSIGN_OR_RETURN(
          std::unique_ptr<DeviceBuffer> counts,
          CombinedCounts(impl, *stager, scratch, bins, coarse ? coarse.get() : counts_.get(),
                         old_bins, zeros));
      counts_ = std::move(counts);
      edges_ = std::move(grown.edges);
    } else {
      QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchCombineCounts(
          counts_->as<unsigned long long>(), scratch, num_bins(), counts_->as<unsigned long long>(),
          num_bins(), zeros, stager->launch()));
      QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
    }
    total_ += binned(read);
    abs_max_ = std::max(abs_max_, batch_max);
    collected_ = true;
    return stats;
  }

  // No range yet: the batch's own max sets it (torch.histc's max argument).
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ResetStats());
  DeviceBatchStats* device_stats = stager->stats();
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ForEachPiece(
      batch, [&](const void* data, int64_t, int64_t count, const Launch& launch) {
        return internal::LaunchAbsMax(data, batch.dtype, count, &device_stats->max_bits,
                                      &device_stats->nonfinite, launch);
      }));
  QCAL_CUDA_ASSIGN_OR_RETURN(const DeviceBatchStats range, stager->ReadStats());
  stats.nonfinite = static_cast<int64_t>(range.nonfinite);
  const float max = std::bit_cast<float>(range.max_bits);
  if (max == 0.0f) {
    // Only zeros (and non-finite values): held as a count until a range exists.
    if (!skip_zeros) {
      const uint64_t zeros = static_cast<uint64_t>(batch.count) - range.nonfinite;
      pending_zeros_ += zeros;
      total_ += zeros;
    }
    collected_ = true;
    return stats;
  }
  DeviceBatchStats read;
  QCAL_CUDA_ASSIGN_OR_RETURN(unsigned long long* scratch,
                             BinBatch(*stager, batch, max, options_.num_bins, &read));
  QCAL_CUDA_ASSIGN_OR_RETURN(std::unique_ptr<DeviceBuffer> counts,
                             CombinedCounts(impl, *stager, scratch, options_.num_bins, nullptr, 0,
                                            (skip_zeros ? 0 : read.zeros) + pending_zeros_));
  counts_ = std::move(counts);
  edges_ = LinspaceEdges(max, options_.num_bins);
  pending_zeros_ = 0;
  total_ += binned(read);
  abs_max_ = max;
  collected_ = true;
  return stats;
}

absl::Status Histogram::Grow(float new_max) {
  if (!std::isfinite(new_max) || new_max < 0.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("histogram range must grow to a finite max >= 0, got ", new_max));
  }
  if (counts_ != nullptr && new_max <= edges_.back()) return absl::OkStatus();
  if (counts_ == nullptr && new_max == 0.0f) return absl::OkStatus();
  if (options_.layout == HistogramLayout::kMergeable) {
    // The CPU twin's refusal, word for word.
    return kernels::Histogram(options_).Grow(new_max);
  }
  const internal::ContextImpl& impl = context_->impl();
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());
  std::vector<float> edges;
  int64_t merge = 1;
  if (counts_ == nullptr) {
    edges = LinspaceEdges(new_max, options_.num_bins);
  } else {
    QCAL_CUDA_ASSIGN_OR_RETURN(
        HistogramGrowth grown,
        PlanGrowth(edges_, new_max, options_.bin_limit(), options_.num_bins));
    edges = std::move(grown.edges);
    merge = grown.merge;
  }
  const int64_t bins = static_cast<int64_t>(edges.size()) - 1;
  QCAL_CUDA_ASSIGN_OR_RETURN(unsigned long long* zeroed, stager->ZeroedBins(bins));
  std::unique_ptr<DeviceBuffer> coarse;
  if (merge > 1) {
    QCAL_CUDA_ASSIGN_OR_RETURN(coarse, CoarsenedCounts(impl, *stager, *counts_, num_bins(), merge));
  }
  QCAL_CUDA_ASSIGN_OR_RETURN(
      std::unique_ptr<DeviceBuffer> counts,
      CombinedCounts(impl, *stager, zeroed, bins, coarse ? coarse.get() : counts_.get(),
                     (num_bins() + merge - 1) / merge, counts_ == nullptr ? pending_zeros_ : 0));
  counts_ = std::move(counts);
  edges_ = std::move(edges);
  pending_zeros_ = 0;
  return absl::OkStatus();
}

}  // namespace qcal::kernels::cuda
