#include "kernels/cuda/fake_quant.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/cuda_status.h"
#include "kernels/cuda/internal/device_buffer.h"
#include "kernels/cuda/internal/launch.h"
#include "kernels/cuda/internal/stager.h"
#include "kernels/fake_quant.h"
#include "kernels/quant_bound.h"
#include "kernels/tensor_shape.h"

namespace qcal::kernels::cuda {
namespace {

using internal::DeviceBuffer;
using internal::MemoryKind;

// Element strides of `shape` seen through the broadcast `out` shape (0 along broadcast axes).
void BroadcastStrides(std::span<const int64_t> shape, std::span<const int64_t> out,
                      int64_t* strides) {
  std::fill(strides, strides + out.size(), 0);
  int64_t stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const size_t d = shape.size() - 1 - i;
    const size_t o = out.size() - 1 - i;
    strides[o] = shape[d] == 1 ? 0 : stride;
    stride *= shape[d];
  }
}

absl::StatusOr<std::vector<int64_t>> Quantize(const Context& context, const BatchRef& x,
                                              std::span<const int64_t> x_shape, TensorView amax,
                                              const QuantParams& params, bool fake, float* out,
                                              std::vector<float>* scale_out) {
  const bool fp8 = params.format == QuantFormat::kFp8E4M3;
  QCAL_CUDA_ASSIGN_OR_RETURN(
      const float bound,
      fp8 ? absl::StatusOr<float>(kFp8E4M3Max) : QuantBound(params.num_bits, params.is_unsigned));
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckBatchRef(x));
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckShape(x.count, x_shape, "x"));
  QCAL_CUDA_RETURN_IF_NOT_OK(
      CheckShape(static_cast<int64_t>(amax.data.size()), amax.shape, "amax"));
  if (amax.data.empty()) return absl::InvalidArgumentError("amax is empty");

  const internal::ContextImpl& impl = context.impl();
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, impl.Acquire());
  const int64_t x_bytes = x.count * static_cast<int64_t>(DTypeSize(x.dtype));
  // x on the device: in place, or one copy of the whole tensor.
  const void* x_device = x.data;
  std::unique_ptr<DeviceBuffer> x_copy;
  if (x.count > 0) {
    QCAL_CUDA_ASSIGN_OR_RETURN(const MemoryKind kind, internal::FindMemoryKind(x.data));
    if (kind == MemoryKind::kDevice) {
      if (reinterpret_cast<uintptr_t>(x.data) % DTypeSize(x.dtype) != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("device x of ", std::string(DTypeName(x.dtype)),
                         " is not aligned to its element size (", DTypeSize(x.dtype), " bytes)"));
      }
    } else {
      QCAL_CUDA_ASSIGN_OR_RETURN(x_copy, DeviceBuffer::Allocate(impl, x_bytes));
      QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(x_copy->data(), x.data,
                                                static_cast<size_t>(x_bytes),
                                                cudaMemcpyHostToDevice, stager->stream()));
      x_device = x_copy->data();
    }
  }
  if (params.is_unsigned && !fp8 && x.count > 0) {
    // NaN is not negative, and -0.0 is not either.
    QCAL_CUDA_RETURN_IF_NOT_OK(stager->ResetStats());
    QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchCountNegative(
        x_device, x.dtype, x.count, &stager->stats()->negatives, stager->launch()));
    QCAL_CUDA_ASSIGN_OR_RETURN(const internal::DeviceBatchStats read, stager->ReadStats());
    if (read.negatives != 0) {
      return absl::InvalidArgumentError("negative values in x for unsigned quantization");
    }
  }
  if (std::any_of(amax.data.begin(), amax.data.end(), [](float a) { return a < 0.0f; })) {
    return absl::InvalidArgumentError("negative values in amax");
  }
  const float lo = params.is_unsigned ? 0.0f : params.narrow_range ? -bound : -bound - 1.0f;
  QCAL_CUDA_ASSIGN_OR_RETURN(std::vector<int64_t> out_shape, BroadcastShape(x_shape, amax.shape));
  if (static_cast<int>(out_shape.size()) > kMaxQuantRank) {
    return absl::InvalidArgumentError(absl::StrCat("broadcast shape ", ShapeString(out_shape),
                                                   " has rank ", out_shape.size(),
                                                   "; the device supports up to ", kMaxQuantRank));
  }

  // Per amax element: the scale used for rounding (0 for amax <= 2^-24) and the one reported and
  // divided by (1 there). FP8 (kernels/fake_quant.h): the divisor amax / 448 (inf there) and the
  // step multiplied by (1 there); the reported scale is 448 / amax (1 there).
  const size_t scales = amax.data.size();
  std::vector<float> host_scales(2 * scales);
  std::vector<float> reported(scales);
  for (size_t k = 0; k < scales; ++k) {
    const bool zero = amax.data[k] <= kFakeQuantZeroAmax;
    if (fp8) {
      const float step = amax.data[k] / kFp8E4M3Max;
      host_scales[k] = zero ? std::numeric_limits<float>::infinity() : step;
      host_scales[scales + k] = zero ? 1.0f : step;
      reported[k] = zero ? 1.0f : kFp8E4M3Max / amax.data[k];
      continue;
    }
    const float scale = bound / amax.data[k];
    host_scales[k] = zero ? 0.0f : scale;
    host_scales[scales + k] = zero ? 1.0f : scale;
    reported[k] = host_scales[scales + k];
  }
  int64_t total = 1;
  for (const int64_t d : out_shape) total *= d;
  if (total > 0) {
    if (out == nullptr) return absl::InvalidArgumentError("no output buffer");
    QCAL_CUDA_ASSIGN_OR_RETURN(const MemoryKind out_kind, internal::FindMemoryKind(out));
    QCAL_CUDA_ASSIGN_OR_RETURN(
        std::unique_ptr<DeviceBuffer> scale_device,
        DeviceBuffer::Allocate(impl, static_cast<int64_t>(host_scales.size() * sizeof(float))));
    QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(scale_device->data(), host_scales.data(),
                                              host_scales.size() * sizeof(float),
                                              cudaMemcpyHostToDevice, stager->stream()));
    std::unique_ptr<DeviceBuffer> out_copy;
    float* out_device = out;
    const int64_t out_bytes = total * static_cast<int64_t>(sizeof(float));
    if (out_kind != MemoryKind::kDevice) {
      QCAL_CUDA_ASSIGN_OR_RETURN(out_copy, DeviceBuffer::Allocate(impl, out_bytes));
      out_device = out_copy->as<float>();
    }
    internal::QuantLayout layout;
    layout.rank = static_cast<int>(out_shape.size());
    std::copy(out_shape.begin(), out_shape.end(), layout.out_shape);
    BroadcastStrides(x_shape, out_shape, layout.x_stride);
    BroadcastStrides(amax.shape, out_shape, layout.amax_stride);
    layout.x_dense = std::equal(x_shape.begin(), x_shape.end(), out_shape.begin(), out_shape.end());
    layout.amax_scalar = scales == 1;
    const float* round_scale = scale_device->as<float>();
    if (fp8) {
      QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(
          internal::LaunchQuantizeFp8(x_device, x.dtype, total, layout, round_scale,
                                      round_scale + scales, fake, out_device, stager->launch()));
    } else {
      QCAL_CUDA_RETURN_IF_LAUNCH_ERROR(internal::LaunchQuantize(
          x_device, x.dtype, total, layout, round_scale, round_scale + scales, lo, bound, fake,
          out_device, stager->launch()));
    }
    if (out_copy != nullptr) {
      QCAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out, out_device, static_cast<size_t>(out_bytes),
                                                cudaMemcpyDeviceToHost, stager->stream()));
    }
    // The host scales and the buffers must outlive the asynchronous work.
    QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
  } else {
    QCAL_CUDA_RETURN_IF_NOT_OK(stager->Synchronize());
  }
  if (scale_out != nullptr) *scale_out = std::move(reported);
  return out_shape;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> TensorQuant(const Context& context, const BatchRef& x,
                                                 std::span<const int64_t> x_shape, TensorView amax,
                                                 const QuantParams& params, float* quantized_out,
                                                 std::vector<float>* scale_out) {
  return Quantize(context, x, x_shape, amax, params, /*fake=*/false, quantized_out, scale_out);
}

absl::StatusOr<std::vector<int64_t>> FakeTensorQuant(const Context& context, const BatchRef& x,
                                                     std::span<const int64_t> x_shape,
                                                     TensorView amax, const QuantParams& params,
                                                     float* out) {
  return Quantize(context, x, x_shape, amax, params, /*fake=*/true, out, nullptr);
}

}  // namespace qcal::kernels::cuda
