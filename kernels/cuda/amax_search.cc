#include "kernels/cuda/amax_search.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "kernels/amax_search_checks.h"
#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/cuda_status.h"
#include "kernels/cuda/internal/device_buffer.h"
#include "kernels/cuda/internal/launch.h"
#include "kernels/cuda/internal/stager.h"
#include "kernels/mse_centers.h"
#include "kernels/quant_bound.h"
#include "kernels/search_cancel.h"

namespace qcal::kernels::cuda {
namespace {

using internal::DeviceBuffer;
using internal::Stager;

// One device allocation carved into the arrays a search needs, each 256-byte aligned.
class Arena {
 public:
  // Reserves `count` Ts; returns the offset to resolve after Allocate.
  template <typename T>
  int64_t Reserve(int64_t count) {
    const int64_t offset = bytes_;
    bytes_ += (std::max<int64_t>(count, 1) * static_cast<int64_t>(sizeof(T)) + 255) / 256 * 256;
    return offset;
  }
  absl::Status Allocate(const internal::ContextImpl& impl) {
    QCAL_CUDA_ASSIGN_OR_RETURN(buffer_, DeviceBuffer::Allocate(impl, bytes_));
    return absl::OkStatus();
  }
  template <typename T>
  T* At(int64_t offset) const {
    return reinterpret_cast<T*>(static_cast<char*>(buffer_->data()) + offset);
  }

 private:
  int64_t bytes_ = 0;
  std::unique_ptr<DeviceBuffer> buffer_;
};

// The counts of a search on the device, and their exact total (for the emptiness check).
struct DeviceCounts {
  const unsigned long long* counts = nullptr;
  uint64_t total = 0;
};

// Reserves what MakeDeviceCounts needs in `arena`: room for host counts and the total.
struct CountsSlots {
  int64_t counts;
  int64_t total;
};

CountsSlots ReserveCounts(Arena& arena, int64_t bins) {
  return {arena.Reserve<unsigned long long>(bins), arena.Reserve<unsigned long long>(1)};
}

// Puts host counts on the device (device counts are used in place) and sums them.
absl::StatusOr<DeviceCounts> MakeDeviceCounts(Stager& stager, const Arena& arena,
                                              const CountsSlots& slots,
                                              std::span<const uint64_t> counts) {
  DeviceCounts out;
  const int64_t bins = static_cast<int64_t>(counts.size());
  QCAL_CUDA_ASSIGN_OR_RETURN(const internal::MemoryKind kind,
                             internal::FindMemoryKind(counts.data()));
  if (kind == internal::MemoryKind::kDevice) {
    out.counts = reinterpret_cast<const unsigned long long*>(counts.data());
  } else {
    unsigned long long* copy = arena.At<unsigned long long>(slots.counts);
    QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(copy, counts.data(), counts.size_bytes(),
                                              cudaMemcpyHostToDevice, stager.stream()));
    out.counts = copy;
  }
  unsigned long long* total = arena.At<unsigned long long>(slots.total);
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(total, 0, sizeof(unsigned long long), stager.stream()));
  QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(
      internal::LaunchSumCounts(out.counts, bins, total, stager.launch()));
  unsigned long long host_total = 0;
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(&host_total, total, sizeof(host_total),
                                            cudaMemcpyDeviceToHost, stager.stream()));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager.Synchronize());
  out.total = host_total;
  return out;
}

// kernels::CheckNotEmpty on a total: the same error for an empty histogram.
absl::Status CheckTotal(uint64_t total) {
  return CheckNotEmpty(std::span<const uint64_t>(&total, 1));
}

absl::StatusOr<std::vector<double>> CopyBack(Stager& stager, const double* device, int64_t n) {
  std::vector<double> out(static_cast<size_t>(n));
  if (n == 0) return out;
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out.data(), device, out.size() * sizeof(double),
                                            cudaMemcpyDeviceToHost, stager.stream()));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager.Synchronize());
  return out;
}

// The counts on the host, for the FP8 searches that run there (amax_search.h): device counts
// are copied back, host ones copied.
absl::StatusOr<std::vector<uint64_t>> HostCounts(const Context& context,
                                                 std::span<const uint64_t> counts) {
  std::vector<uint64_t> out(counts.size());
  if (counts.empty()) return out;
  QCAL_CUDA_ASSIGN_OR_RETURN(const internal::MemoryKind kind,
                             internal::FindMemoryKind(counts.data()));
  if (kind != internal::MemoryKind::kDevice) {
    std::copy(counts.begin(), counts.end(), out.begin());
    return out;
  }
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, context.impl().Acquire());
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out.data(), counts.data(), counts.size_bytes(),
                                            cudaMemcpyDeviceToHost, stager->stream()));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
  return out;
}

}  // namespace

absl::StatusOr<std::vector<double>> KlDivergences(const Context& context,
                                                  std::span<const uint64_t> counts,
                                                  const SearchOptions& options) {
  if (options.format == QuantFormat::kFp8E4M3) {
    QCAL_CUDA_ASSIGN_OR_RETURN(const std::vector<uint64_t> host, HostCounts(context, counts));
    return kernels::KlDivergences(host, options);
  }
  QCAL_CUDA_RETURN_IF_NOT_OK(QuantBound(options.num_bits, options.is_unsigned).status());
  const int64_t bins = static_cast<int64_t>(counts.size());
  if (bins == 0) return CheckNotEmpty(counts);
  const internal::ContextImpl& impl = context.impl();
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());
  Arena arena;
  const CountsSlots counts_slots = ReserveCounts(arena, bins);
  const int64_t count_prefix = arena.Reserve<double>(bins + 1);
  const int64_t hlogh_prefix = arena.Reserve<double>(bins + 1);
  const int64_t occupied_prefix = arena.Reserve<double>(bins + 1);
  // Candidates are known only after the checks; at most `bins` of them.
  const int64_t divergences = arena.Reserve<double>(bins);
  QCAL_CUDA_RETURN_IF_NOT_OK(arena.Allocate(impl));
  QCAL_CUDA_ASSIGN_OR_RETURN(const DeviceCounts device,
                             MakeDeviceCounts(*stager, arena, counts_slots, counts));
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckTotal(device.total));
  QCAL_CUDA_RETURN_IF_NOT_OK(
      CheckCandidates("entropy", options.start_bin, options.stride, 1, bins, bins));
  // One poll before the launches: once launched, the kernels run to completion.
  if (SearchCancel cancel(options.cancelled); cancel.Poll()) return SearchCancel::Status("entropy");
  const int64_t candidates = (bins - options.start_bin) / options.stride + 1;
  const int shift = options.num_bits - 1 + (options.is_unsigned ? 1 : 0);
  QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchEntropyPrefix(
      device.counts, bins, arena.At<double>(count_prefix), arena.At<double>(hlogh_prefix),
      arena.At<double>(occupied_prefix), stager->launch()));
  QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchKlCandidates(
      arena.At<double>(count_prefix), arena.At<double>(hlogh_prefix),
      arena.At<double>(occupied_prefix), bins, options.start_bin, options.stride, candidates, shift,
      arena.At<double>(divergences), stager->launch()));
  return CopyBack(*stager, arena.At<double>(divergences), candidates);
}

absl::StatusOr<AmaxChoice> EntropyAmax(const Context& context, std::span<const uint64_t> counts,
                                       std::span<const float> edges, const SearchOptions& options) {
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckEdges(counts, edges));
  QCAL_CUDA_ASSIGN_OR_RETURN(const std::vector<double> divergences,
                             KlDivergences(context, counts, options));
  // entropy_amax.cc's rule (numpy's argmin over the reversed list): the last NaN if there is
  // one, else the last minimum.
  int64_t best = -1;
  for (int64_t k = static_cast<int64_t>(divergences.size()) - 1; k >= 0; --k) {
    if (std::isnan(divergences[k])) {
      best = k;
      break;
    }
  }
  if (best < 0) {
    best = static_cast<int64_t>(divergences.size()) - 1;
    for (int64_t k = best - 1; k >= 0; --k) {
      if (divergences[k] < divergences[best]) best = k;
    }
  }
  const int64_t index = options.start_bin + best * options.stride;
  return AmaxChoice{edges[index], index, divergences[best]};
}

namespace {

// MseErrors in the scaled units of *scale (kernels/mse_centers.h).
absl::StatusOr<std::vector<double>> ScaledMseErrors(const Context& context,
                                                    std::span<const uint64_t> counts,
                                                    std::span<const float> edges,
                                                    const SearchOptions& options, MseScale* scale) {
  if (options.format != QuantFormat::kInt) {  // MseErrors and MseAmax route FP8 before this
    return absl::InvalidArgumentError("the GPU mse search is for int quantizers only");
  }
  QCAL_CUDA_ASSIGN_OR_RETURN(const float bound, QuantBound(options.num_bits, options.is_unsigned));
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckEdges(counts, edges));
  const int64_t bins = static_cast<int64_t>(counts.size());
  if (bins == 0) return CheckNotEmpty(counts);
  const internal::ContextImpl& impl = context.impl();
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());
  Arena arena;
  const CountsSlots counts_slots = ReserveCounts(arena, bins);
  const int64_t centers = arena.Reserve<float>(bins);
  const int64_t occupied_below = arena.Reserve<long long>(bins + 1);
  const int64_t occupied_centers = arena.Reserve<float>(bins);
  const int64_t occupied_weights = arena.Reserve<double>(bins);
  const int64_t suffix_w = arena.Reserve<double>(bins + 1);
  const int64_t suffix_wc = arena.Reserve<double>(bins + 1);
  const int64_t suffix_wcc = arena.Reserve<double>(bins + 1);
  const int64_t errors = arena.Reserve<double>(bins);
  QCAL_CUDA_RETURN_IF_NOT_OK(arena.Allocate(impl));
  QCAL_CUDA_ASSIGN_OR_RETURN(const DeviceCounts device,
                             MakeDeviceCounts(*stager, arena, counts_slots, counts));
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckTotal(device.total));
  QCAL_CUDA_RETURN_IF_NOT_OK(
      CheckCandidates("mse", options.start_bin, options.stride, 0, bins - 1, bins));
  // One poll before the launches: once launched, the kernels run to completion.
  if (SearchCancel cancel(options.cancelled); cancel.Poll()) return SearchCancel::Status("mse");

  // The centers as kernels/mse_amax.cc's (scaled at extreme magnitudes), on the host: the edges
  // live there.
  const MseCenters centers_on_host = MseSearchCenters(edges);
  const std::vector<float>& host_centers = centers_on_host.centers;
  *scale = centers_on_host.scale;
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(arena.At<float>(centers), host_centers.data(),
                                            host_centers.size() * sizeof(float),
                                            cudaMemcpyHostToDevice, stager->stream()));
  const internal::MseTables tables{.occupied_below = arena.At<long long>(occupied_below),
                                   .occupied_centers = arena.At<float>(occupied_centers),
                                   .occupied_weights = arena.At<double>(occupied_weights),
                                   .suffix_w = arena.At<double>(suffix_w),
                                   .suffix_wc = arena.At<double>(suffix_wc),
                                   .suffix_wcc = arena.At<double>(suffix_wcc)};
  QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchMseTables(
      device.counts, arena.At<float>(centers), bins, tables, stager->launch()));
  const int64_t candidates = (bins - 1 - options.start_bin) / options.stride + 1;
  const float lo = options.is_unsigned ? 0.0f : -bound;  // fake_tensor_quant's narrow range
  QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchMseCandidates(
      arena.At<float>(centers), tables, bins, options.start_bin, options.stride, candidates, bound,
      lo, arena.At<double>(errors), stager->launch()));
  // The host copy of the centers must outlive the asynchronous copy: CopyBack synchronizes.
  return CopyBack(*stager, arena.At<double>(errors), candidates);
}

}  // namespace

absl::StatusOr<std::vector<double>> MseErrors(const Context& context,
                                              std::span<const uint64_t> counts,
                                              std::span<const float> edges,
                                              const SearchOptions& options) {
  if (options.format == QuantFormat::kFp8E4M3) {
    QCAL_CUDA_ASSIGN_OR_RETURN(const std::vector<uint64_t> host, HostCounts(context, counts));
    return kernels::MseErrors(host, edges, options);
  }
  MseScale scale;
  QCAL_CUDA_ASSIGN_OR_RETURN(std::vector<double> errors,
                             ScaledMseErrors(context, counts, edges, options, &scale));
  if (scale.shift != 0) {
    for (double& e : errors) e = scale.Unscaled(e);
  }
  return errors;
}

absl::StatusOr<AmaxChoice> MseAmax(const Context& context, std::span<const uint64_t> counts,
                                   std::span<const float> edges, const SearchOptions& options) {
  if (options.format == QuantFormat::kFp8E4M3) {
    QCAL_CUDA_ASSIGN_OR_RETURN(const std::vector<uint64_t> host, HostCounts(context, counts));
    return kernels::MseAmax(host, edges, options);
  }
  MseScale scale;
  QCAL_CUDA_ASSIGN_OR_RETURN(const std::vector<double> errors,
                             ScaledMseErrors(context, counts, edges, options, &scale));
  int64_t best = 0;  // numpy argmin: the first minimum
  for (int64_t k = 1; k < static_cast<int64_t>(errors.size()); ++k) {
    if (errors[k] < errors[best]) best = k;
  }
  const int64_t index = options.start_bin + best * options.stride;
  return AmaxChoice{scale.Amax(edges, index), index, scale.Unscaled(errors[best])};
}

absl::StatusOr<AmaxChoice> PercentileAmax(const Context& context, std::span<const uint64_t> counts,
                                          std::span<const float> edges, double percentile) {
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckPercentile(percentile));
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckEdges(counts, edges));
  const int64_t bins = static_cast<int64_t>(counts.size());
  if (bins == 0) return CheckNotEmpty(counts);
  const internal::ContextImpl& impl = context.impl();
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());
  Arena arena;
  const CountsSlots counts_slots = ReserveCounts(arena, bins);
  const int64_t terms = arena.Reserve<double>(bins);
  const int64_t result = arena.Reserve<internal::PercentileResult>(1);
  QCAL_CUDA_RETURN_IF_NOT_OK(arena.Allocate(impl));
  QCAL_CUDA_ASSIGN_OR_RETURN(const DeviceCounts device,
                             MakeDeviceCounts(*stager, arena, counts_slots, counts));
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckTotal(device.total));
  QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchPercentile(
      device.counts, bins, device.total, percentile / 100.0, arena.At<double>(terms),
      arena.At<internal::PercentileResult>(result), stager->launch()));
  internal::PercentileResult host;
  QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(&host, arena.At<internal::PercentileResult>(result),
                                            sizeof(host), cudaMemcpyDeviceToHost,
                                            stager->stream()));
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
  const int64_t index = static_cast<int64_t>(host.index);
  return AmaxChoice{edges[index], index, host.cdf};
}

}  // namespace qcal::kernels::cuda
