#include "kernels/cuda/max_calibrator.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/cuda_status.h"
#include "kernels/cuda/internal/device_buffer.h"
#include "kernels/cuda/internal/launch.h"
#include "kernels/cuda/internal/stager.h"

namespace qcal::kernels::cuda {
namespace {

using internal::ChannelLayout;
using internal::DeviceBatchStats;
using internal::Launch;

// A batch checked against the calibrator, as kernels::MaxCalibrator::Collect checks it (same
// messages): the kept axes normalized and sorted, and their sizes.
struct CheckedBatch {
  std::vector<int> kept;
  std::vector<int64_t> channel_shape;
  int64_t channels = 1;
};

absl::StatusOr<CheckedBatch> CheckBatch(int64_t values, std::span<const int64_t> shape,
                                        const std::vector<int>& axes, bool empty,
                                        const std::vector<int64_t>& channel_shape) {
  int64_t count = 1;
  for (const int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape [", absl::StrJoin(shape, ", "), "] has a negative dimension"));
    }
    if (d != 0 && count > INT64_MAX / d) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape [", absl::StrJoin(shape, ", "), "] overflows int64"));
    }
    count *= d;
  }
  if (count != values) {
    return absl::InvalidArgumentError(absl::StrCat("batch has ", values, " values but shape [",
                                                   absl::StrJoin(shape, ", "), "] needs ", count));
  }
  if (count == 0) return absl::InvalidArgumentError("empty batch: max calibration needs values");

  const int rank = static_cast<int>(shape.size());
  CheckedBatch out;
  for (const int axis : axes) {
    const int normalized = axis < 0 ? axis + rank : axis;
    if (normalized < 0 || normalized >= rank) {
      return absl::InvalidArgumentError(absl::StrCat("axis ", axis, " is out of range for a rank-",
                                                     rank, " batch of shape [",
                                                     absl::StrJoin(shape, ", "), "]"));
    }
    out.kept.push_back(normalized);
  }
  std::sort(out.kept.begin(), out.kept.end());
  if (std::adjacent_find(out.kept.begin(), out.kept.end()) != out.kept.end()) {
    return absl::InvalidArgumentError(absl::StrCat("axes [", absl::StrJoin(axes, ", "),
                                                   "] name the same axis twice for rank ", rank));
  }
  for (const int axis : out.kept) {
    out.channel_shape.push_back(shape[axis]);
    out.channels *= shape[axis];
  }
  if (!empty && out.channel_shape != channel_shape) {
    return absl::InvalidArgumentError(
        absl::StrCat("kept dimensions [", absl::StrJoin(out.channel_shape, ", "), "] of shape [",
                     absl::StrJoin(shape, ", "), "] differ from earlier batches' [",
                     absl::StrJoin(channel_shape, ", "), "]"));
  }
  return out;
}

// max_calibrator.cc's MergeRuns: size-1 axes dropped, neighbours of the same kind merged, kept
// runs weighted by their channel distance.
absl::StatusOr<ChannelLayout> MergeRuns(std::span<const int64_t> shape,
                                        std::span<const int> kept_axes) {
  struct Run {
    int64_t size;
    bool kept;
  };
  std::vector<Run> runs;
  std::vector<bool> kept(shape.size(), false);
  for (const int axis : kept_axes) kept[axis] = true;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!runs.empty() && runs.back().kept == kept[d]) {
      runs.back().size *= shape[d];
    } else {
      runs.push_back({shape[d], kept[d]});
    }
  }
  if (static_cast<int>(runs.size()) > internal::kMaxRuns) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shape [", absl::StrJoin(shape, ", "), "] has ", runs.size(),
        " alternating runs of kept and reduced axes; the device supports ", internal::kMaxRuns));
  }
  ChannelLayout layout;
  layout.num_runs = static_cast<int>(runs.size());
  layout.first_kept = layout.num_runs;
  int64_t stride = 1;
  for (int r = layout.num_runs - 1; r >= 0; --r) {
    layout.size[r] = runs[r].size;
    if (runs[r].kept) {
      layout.channel_stride[r] = stride;
      stride *= runs[r].size;
      layout.first_kept = r;
    }
  }
  return layout;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MaxCalibrator>> MaxCalibrator::Create(
    std::shared_ptr<Context> context, std::vector<int> axes) {
  if (context == nullptr) return absl::InvalidArgumentError("no CUDA context");
  return std::unique_ptr<MaxCalibrator>(new MaxCalibrator(std::move(context), std::move(axes)));
}

MaxCalibrator::MaxCalibrator(std::shared_ptr<Context> context, std::vector<int> axes)
    : context_(std::move(context)), axes_(std::move(axes)) {}

MaxCalibrator::~MaxCalibrator() = default;

absl::StatusOr<CollectStats> MaxCalibrator::Collect(const BatchRef& batch,
                                                    std::span<const int64_t> shape) {
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckBatchRef(batch));
  QCAL_CUDA_ASSIGN_OR_RETURN(const CheckedBatch checked,
                             CheckBatch(batch.count, shape, axes_, empty(), channel_shape_));
  ChannelLayout layout;
  if (!checked.kept.empty()) {
    QCAL_CUDA_ASSIGN_OR_RETURN(layout, MergeRuns(shape, checked.kept));
  }
  internal::ContextImpl& impl = context_->impl();
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());

  // The first batch allocates the state; it is kept only if the whole batch succeeds.
  std::unique_ptr<internal::DeviceBuffer> fresh;
  unsigned int* bits = bits_ != nullptr ? bits_->as<unsigned int>() : nullptr;
  if (bits == nullptr) {
    const int64_t bytes = checked.channels * static_cast<int64_t>(sizeof(unsigned int));
    QCAL_CUDA_ASSIGN_OR_RETURN(fresh, internal::DeviceBuffer::Allocate(impl, bytes));
    QCAL_CUDA_RETURN_IF_ERROR(
        cudaMemsetAsync(fresh->data(), 0, static_cast<size_t>(bytes), stager->stream()));
    bits = fresh->as<unsigned int>();
  }
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ResetStats());
  DeviceBatchStats* stats = stager->stats();
  const bool per_tensor = checked.kept.empty();
  const int64_t channels = checked.channels;
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ForEachPiece(
      batch, [&](const void* data, int64_t offset, int64_t count, const Launch& launch) {
        if (per_tensor) {
          return internal::LaunchAbsMax(data, batch.dtype, count, bits, &stats->nonfinite, launch);
        }
        return internal::LaunchChannelAbsMax(data, batch.dtype, offset, count, layout, channels,
                                             bits, &stats->nonfinite, launch);
      }));
  QCAL_CUDA_ASSIGN_OR_RETURN(const DeviceBatchStats read, stager->ReadStats());

  if (fresh != nullptr) {
    bits_ = std::move(fresh);
    amax_size_ = channels;
    channel_shape_ = checked.channel_shape;
  }
  return CollectStats{.elements = batch.count, .nonfinite = static_cast<int64_t>(read.nonfinite)};
}

absl::StatusOr<std::vector<float>> MaxCalibrator::amax() const {
  if (bits_ == nullptr) return std::vector<float>();
  std::vector<uint32_t> bits(static_cast<size_t>(amax_size_));
  {
    QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, context_->impl().Acquire());
    QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(bits.data(), bits_->data(),
                                              bits.size() * sizeof(uint32_t),
                                              cudaMemcpyDeviceToHost, stager->stream()));
    QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
  }
  std::vector<float> amax;
  amax.reserve(bits.size());
  for (const uint32_t b : bits) amax.push_back(std::bit_cast<float>(b));
  return amax;
}

void MaxCalibrator::Reset() {
  bits_.reset();
  amax_size_ = 0;
  channel_shape_.clear();
}

}  // namespace qcal::kernels::cuda
