#include "kernels/max_calibrator.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/finite_abs_max.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"

namespace qcal::kernels {
namespace {

constexpr uint32_t kAbsMask = 0x7fffffffu;
constexpr uint32_t kInfBits = 0x7f800000u;

// A batch's axes with size-1 axes dropped and neighbours of the same kind merged: a reduced run
// has channel_stride 0, a kept run the channel distance between its consecutive indices.
struct Run {
  int64_t size;
  int64_t channel_stride;
};

std::vector<Run> MergeRuns(std::span<const int64_t> shape, std::span<const int> kept_axes) {
  std::vector<Run> runs;
  std::vector<bool> kept(shape.size(), false);
  for (int axis : kept_axes) kept[axis] = true;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int64_t kind = kept[d] ? 1 : 0;
    if (!runs.empty() && (runs.back().channel_stride != 0) == (kind != 0)) {
      runs.back().size *= shape[d];
    } else {
      runs.push_back({shape[d], kind});
    }
  }
  int64_t stride = 1;
  for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
    if (it->channel_stride == 0) continue;
    it->channel_stride = stride;
    stride *= it->size;
  }
  return runs;
}

// Folds |x| of one row whose elements are consecutive channels into bits[0..count).
QCAL_VECTOR_CLONES uint32_t FoldChannelsRow(const float* x, int64_t count, uint32_t* bits) {
  uint32_t nonfinite = 0;
  for (int64_t k = 0; k < count; ++k) {
    const uint32_t u = std::bit_cast<uint32_t>(x[k]) & kAbsMask;
    const uint32_t finite_bits = u & (0u - static_cast<uint32_t>(u < kInfBits));
    bits[k] = bits[k] > finite_bits ? bits[k] : finite_bits;
    nonfinite += static_cast<uint32_t>(u >= kInfBits);
  }
  return nonfinite;
}

struct ChannelMax {
  std::vector<uint32_t> bits;  // |amax| bits per channel
  int64_t nonfinite = 0;
};

// max |x| per channel over rows [row_begin, row_end) of the run layout.
ChannelMax ReduceRows(const float* x, const std::vector<Run>& runs, int64_t channels,
                      int64_t row_begin, int64_t row_end) {
  ChannelMax out{std::vector<uint32_t>(static_cast<size_t>(channels), 0u), 0};
  const Run inner = runs.back();
  const size_t outer_runs = runs.size() - 1;
  // Mixed-radix digits of row_begin over the outer runs, then an odometer.
  std::vector<int64_t> digit(outer_runs, 0);
  int64_t base = 0;
  for (int64_t r = row_begin, d = static_cast<int64_t>(outer_runs) - 1; d >= 0; --d) {
    digit[d] = r % runs[d].size;
    r /= runs[d].size;
    base += digit[d] * runs[d].channel_stride;
  }
  for (int64_t row = row_begin; row < row_end; ++row) {
    const float* values = x + row * inner.size;
    if (inner.channel_stride == 0) {
      const FiniteAbsMaxResult m = FiniteAbsMaxSerial(values, inner.size);
      out.bits[base] = std::max(out.bits[base], std::bit_cast<uint32_t>(m.abs_max));
      out.nonfinite += m.nonfinite;
    } else {
      out.nonfinite += FoldChannelsRow(values, inner.size, out.bits.data() + base);
    }
    for (int64_t d = static_cast<int64_t>(outer_runs) - 1; d >= 0; --d) {
      base += runs[d].channel_stride;
      if (++digit[d] < runs[d].size) break;
      base -= runs[d].channel_stride * runs[d].size;
      digit[d] = 0;
    }
  }
  return out;
}

ChannelMax PerChannelAbsMax(std::span<const float> x, std::span<const int64_t> shape,
                            std::span<const int> kept_axes, int64_t channels) {
  std::vector<Run> runs = MergeRuns(shape, kept_axes);
  if (runs.empty()) runs.push_back({1, 0});  // a single element
  const int64_t rows = static_cast<int64_t>(x.size()) / runs.back().size;
  const int chunks =
      static_cast<int>(std::min<int64_t>(ChunksFor(static_cast<int64_t>(x.size())), rows));
  std::vector<ChannelMax> partial(chunks);
  ParallelFor(rows, chunks, [&](int chunk, int64_t begin, int64_t end) {
    partial[chunk] = ReduceRows(x.data(), runs, channels, begin, end);
  });
  ChannelMax result = std::move(partial[0]);
  for (int c = 1; c < chunks; ++c) {
    for (int64_t k = 0; k < channels; ++k) {
      result.bits[k] = std::max(result.bits[k], partial[c].bits[k]);
    }
    result.nonfinite += partial[c].nonfinite;
  }
  return result;
}

}  // namespace

MaxCalibrator::MaxCalibrator(std::optional<int> axis) {
  if (axis.has_value()) axes_.push_back(*axis);
}

MaxCalibrator::MaxCalibrator(std::vector<int> axes) : axes_(std::move(axes)) {}

std::optional<int> MaxCalibrator::axis() const {
  if (axes_.empty()) return std::nullopt;
  return axes_.front();
}

absl::StatusOr<CollectStats> MaxCalibrator::Collect(std::span<const float> x,
                                                    std::span<const int64_t> shape) {
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
  if (count != static_cast<int64_t>(x.size())) {
    return absl::InvalidArgumentError(absl::StrCat("batch has ", x.size(), " values but shape [",
                                                   absl::StrJoin(shape, ", "), "] needs ", count));
  }
  if (count == 0) return absl::InvalidArgumentError("empty batch: max calibration needs values");

  const int rank = static_cast<int>(shape.size());
  std::vector<int> kept;
  for (const int axis : axes_) {
    const int normalized = axis < 0 ? axis + rank : axis;
    if (normalized < 0 || normalized >= rank) {
      return absl::InvalidArgumentError(absl::StrCat("axis ", axis, " is out of range for a rank-",
                                                     rank, " batch of shape [",
                                                     absl::StrJoin(shape, ", "), "]"));
    }
    kept.push_back(normalized);
  }
  std::sort(kept.begin(), kept.end());
  if (std::adjacent_find(kept.begin(), kept.end()) != kept.end()) {
    return absl::InvalidArgumentError(absl::StrCat("axes [", absl::StrJoin(axes_, ", "),
                                                   "] name the same axis twice for rank ", rank));
  }
  std::vector<int64_t> channel_shape;
  int64_t channels = 1;
  for (const int axis : kept) {
    channel_shape.push_back(shape[axis]);
    channels *= shape[axis];
  }
  if (!empty() && channel_shape != channel_shape_) {
    return absl::InvalidArgumentError(
        absl::StrCat("kept dimensions [", absl::StrJoin(channel_shape, ", "), "] of shape [",
                     absl::StrJoin(shape, ", "), "] differ from earlier batches' [",
                     absl::StrJoin(channel_shape_, ", "), "]"));
  }

  CollectStats stats;
  stats.elements = count;
  std::vector<float> batch_amax;
  if (kept.empty()) {
    const FiniteAbsMaxResult r = FiniteAbsMax(x);
    batch_amax.push_back(r.abs_max);
    stats.nonfinite = r.nonfinite;
  } else {
    const ChannelMax r = PerChannelAbsMax(x, shape, kept, channels);
    batch_amax.reserve(r.bits.size());
    for (const uint32_t bits : r.bits) batch_amax.push_back(std::bit_cast<float>(bits));
    stats.nonfinite = r.nonfinite;
  }
  if (empty()) {
    amax_ = std::move(batch_amax);
    channel_shape_ = std::move(channel_shape);
  } else {
    for (size_t c = 0; c < amax_.size(); ++c) amax_[c] = std::max(amax_[c], batch_amax[c]);
  }
  return stats;
}

}  // namespace qcal::kernels
