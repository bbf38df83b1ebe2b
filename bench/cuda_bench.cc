// GPU figures of the CUDA kernels, one JSON line each (bench/gpu_check.sh collects them):
//   {"name": "histogram_f32", "device": "cuda", "value": 812.4, "unit": "G elem/s", ...}
// Throughputs are medians over repeated calls after warm-up, each timed with CUDA events
// (kernels alone) or around the synchronous public call (what a caller sees); the memory limit
// is measured in the same run as a device-to-device copy of the same bytes, and every
// throughput on device memory is also given as a ratio to it ("_vs_copy": time / copy time).
//
//   qcal_cuda_bench [--quick]
//
// Without a device it prints one line {"name": "cuda_bench", "skipped": "no CUDA device: ..."}
// and exits 0. Data are random (never zeros), drawn on the host once.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/abs_max.h"
#include "kernels/cuda/amax_search.h"
#include "kernels/cuda/context.h"
#include "kernels/cuda/fake_quant.h"
#include "kernels/cuda/histogram.h"
#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/launch.h"
#include "kernels/cuda/max_calibrator.h"

namespace qcal::kernels::cuda {
namespace {

bool quick = false;

void Fail(const std::string& what) {
  std::printf("{\"name\": \"cuda_bench\", \"device\": \"cuda\", \"error\": \"%s\"}\n",
              what.c_str());
  std::fflush(stdout);
  std::exit(1);
}

void Check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) Fail(std::string(what) + ": " + cudaGetErrorString(error));
}

template <typename T>
T Must(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) Fail(std::string(what) + ": " + std::string(value.status().message()));
  return *std::move(value);
}

void Emit(const std::string& name, double value, const std::string& unit,
          const std::string& extra = "") {
  std::printf("{\"name\": \"%s\", \"device\": \"cuda\", \"value\": %.6g, \"unit\": \"%s\"%s}\n",
              name.c_str(), value, unit.c_str(), extra.c_str());
  std::fflush(stdout);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Reps() { return quick ? 3 : 10; }

// Median seconds of fn() timed with events on `stream` (fn only enqueues).
double TimeStream(cudaStream_t stream, const std::function<void()>& fn) {
  cudaEvent_t start;
  cudaEvent_t stop;
  Check(cudaEventCreate(&start), "cudaEventCreate");
  Check(cudaEventCreate(&stop), "cudaEventCreate");
  for (int i = 0; i < 2; ++i) fn();
  Check(cudaStreamSynchronize(stream), "warm-up");
  std::vector<double> seconds;
  for (int r = 0; r < Reps(); ++r) {
    Check(cudaEventRecord(start, stream), "cudaEventRecord");
    fn();
    Check(cudaEventRecord(stop, stream), "cudaEventRecord");
    Check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    seconds.push_back(ms * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return Median(seconds);
}

// Median seconds of a synchronous call.
double TimeCall(const std::function<void()>& fn) {
  for (int i = 0; i < 2; ++i) fn();
  std::vector<double> seconds;
  for (int r = 0; r < Reps(); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return Median(seconds);
}

// Random values of `dtype` (normal, scale 1, no zeros runs, no non-finite values).
std::vector<uint8_t> RandomBytes(DType dtype, int64_t count, uint64_t seed) {
  std::vector<float> values(static_cast<size_t>(count));
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Draw 1M values and tile them: drawing billions would take minutes on the host.
  const int64_t period = std::min<int64_t>(count, int64_t{1} << 20);
  for (int64_t i = 0; i < period; ++i) values[i] = normal(rng);
  for (int64_t i = period; i < count; ++i) values[i] = values[i % period];
  std::vector<uint8_t> bytes(static_cast<size_t>(count) * DTypeSize(dtype));
  for (int64_t i = 0; i < count; ++i) {
    const float f = values[i];
    uint32_t u;
    std::memcpy(&u, &f, 4);
    switch (dtype) {
      case DType::kFloat32:
        std::memcpy(bytes.data() + 4 * i, &f, 4);
        break;
      case DType::kBFloat16: {
        const uint16_t b = static_cast<uint16_t>(u >> 16);
        std::memcpy(bytes.data() + 2 * i, &b, 2);
        break;
      }
      case DType::kFloat16: {
        // |v| < 8 here: normal halves by truncation.
        const uint32_t sign = (u >> 16) & 0x8000u;
        const float a = std::fabs(f);
        uint16_t h = 0;
        if (a >= 0x1p-14f) {
          uint32_t au;
          std::memcpy(&au, &a, 4);
          h = static_cast<uint16_t>(sign | (((au >> 23) - 112) << 10) | ((au >> 13) & 0x3ffu));
        }
        std::memcpy(bytes.data() + 2 * i, &h, 2);
        break;
      }
      case DType::kFloat64: {
        const double d = f;
        std::memcpy(bytes.data() + 8 * i, &d, 8);
        break;
      }
    }
  }
  return bytes;
}

struct DeviceArray {
  void* data = nullptr;
  explicit DeviceArray(size_t bytes) { Check(cudaMalloc(&data, bytes), "cudaMalloc"); }
  ~DeviceArray() { cudaFree(data); }
};

std::string DTypeTag(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "f32";
    case DType::kFloat16:
      return "f16";
    case DType::kBFloat16:
      return "bf16";
    case DType::kFloat64:
      return "f64";
  }
  return "unknown";
}

void Run(const std::shared_ptr<Context>& context) {
  const DeviceInfo& info = context->info();
  std::printf(
      "{\"name\": \"cuda_device\", \"device\": \"cuda\", \"gpu\": \"%s\", \"sm\": \"%d%d\", "
      "\"multiprocessors\": %d, \"memory_bytes\": %lld}\n",
      info.name.c_str(), info.major, info.minor, info.multiprocessors,
      static_cast<long long>(info.total_memory));
  internal::ContextImpl& impl = context->impl();
  cudaStream_t stream;
  Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  const internal::Launch launch{stream, impl.max_blocks()};

  // 2^30 elements (4 GiB of float32) are many times the 60 MB L2 and ~1 ms of memory time.
  const int64_t n = quick ? int64_t{1} << 26 : int64_t{1} << 30;
  const size_t max_bytes = static_cast<size_t>(n) * 4;
  DeviceArray src(max_bytes);
  DeviceArray dst(max_bytes);

  // The memory limit: a device-to-device copy; bytes read plus bytes written.
  const double copy_s = TimeStream(stream, [&] {
    Check(cudaMemcpyAsync(dst.data, src.data, max_bytes, cudaMemcpyDeviceToDevice, stream), "copy");
  });
  Emit("copy_bandwidth", 2.0 * static_cast<double>(max_bytes) / copy_s / 1e9, "GB/s",
       ", \"bytes\": " + std::to_string(max_bytes));
  // Time of copying `bytes` (read and write), from the measured rate.
  const auto copy_time = [&](double bytes) {
    return copy_s * bytes / static_cast<double>(max_bytes);
  };

  for (const DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    const std::string tag = DTypeTag(dtype);
    const double bytes = static_cast<double>(n) * static_cast<double>(DTypeSize(dtype));
    {
      const std::vector<uint8_t> host = RandomBytes(dtype, n, 1);
      Check(cudaMemcpy(src.data, host.data(), host.size(), cudaMemcpyHostToDevice), "upload");
    }
    const BatchRef batch{src.data, dtype, n};
    const std::string sizes = ", \"elements\": " + std::to_string(n);

    // max |x|: the kernel alone, and the public call.
    auto* stats = static_cast<internal::DeviceBatchStats*>(dst.data);
    const double amax_kernel_s = TimeStream(stream, [&] {
      Check(internal::LaunchAbsMax(src.data, dtype, n, &stats->max_bits, &stats->nonfinite, launch),
            "LaunchAbsMax");
    });
    Emit("amax_" + tag + "_kernel", n / amax_kernel_s / 1e9, "G elem/s",
         sizes + ", \"GB_per_s\": " + std::to_string(bytes / amax_kernel_s / 1e9) +
             ", \"vs_copy\": " + std::to_string(amax_kernel_s / copy_time(bytes)));
    const double amax_s = TimeCall([&] { Must(FiniteAbsMax(*context, batch), "FiniteAbsMax"); });
    Emit("amax_" + tag, n / amax_s / 1e9, "G elem/s",
         sizes + ", \"GB_per_s\": " + std::to_string(bytes / amax_s / 1e9));

    // Histogram in steady state: batches inside the current range (2048 bins).
    auto hist = Must(Histogram::Create(context, {.num_bins = 2048}), "Histogram::Create");
    Must(hist->Collect(batch), "first Collect");
    const float range = hist->Edges().back();
    auto* counts = static_cast<unsigned long long*>(dst.data) + 8;
    const double bin_kernel_s = TimeStream(stream, [&] {
      Check(internal::LaunchBinAbs(src.data, dtype, n, range, 2048, counts, stats, launch),
            "LaunchBinAbs");
    });
    Emit("histogram_" + tag + "_kernel", n / bin_kernel_s / 1e9, "G elem/s",
         sizes + ", \"GB_per_s\": " + std::to_string(bytes / bin_kernel_s / 1e9) +
             ", \"vs_copy\": " + std::to_string(bin_kernel_s / copy_time(bytes)));
    const double hist_s = TimeCall([&] { Must(hist->Collect(batch), "Collect"); });
    Emit("histogram_" + tag, n / hist_s / 1e9, "G elem/s",
         sizes + ", \"GB_per_s\": " + std::to_string(bytes / hist_s / 1e9) +
             ", \"vs_copy\": " + std::to_string(hist_s / copy_time(bytes)));

    // The mergeable layout's Collect in steady state (a max pass, then bins at the held
    // exponent), beside the reference layout's fused pass above.
    auto mergeable =
        Must(Histogram::Create(context, {.num_bins = 2048, .layout = HistogramLayout::kMergeable}),
             "Histogram::Create mergeable");
    Must(mergeable->Collect(batch), "first mergeable Collect");
    const double mergeable_s = TimeCall([&] { Must(mergeable->Collect(batch), "Collect"); });
    Emit("histogram_mergeable_" + tag, n / mergeable_s / 1e9, "G elem/s",
         sizes + ", \"GB_per_s\": " + std::to_string(bytes / mergeable_s / 1e9) +
             ", \"vs_copy\": " + std::to_string(mergeable_s / copy_time(bytes)));

    // fake quant, device in and out (reads the input, writes float32).
    if (dtype == DType::kFloat32) {
      const float amax = 2.5f;
      const std::vector<int64_t> shape = {n};
      const std::vector<int64_t> scalar = {};
      const double fq_s = TimeCall([&] {
        Must(FakeTensorQuant(*context, batch, shape, {{&amax, 1}, scalar}, {},
                             static_cast<float*>(dst.data)),
             "FakeTensorQuant");
      });
      Emit("fake_quant_f32", n / fq_s / 1e9, "G elem/s",
           sizes + ", \"vs_copy\": " + std::to_string(fq_s / copy_time(bytes)));
    }
  }

  // float32 data again for the rest (the loop left bfloat16 bytes in `src`).
  {
    const int64_t f32_n = std::min<int64_t>(n, 256LL * 64 * 56 * 56);
    const std::vector<uint8_t> host = RandomBytes(DType::kFloat32, f32_n, 3);
    Check(cudaMemcpy(src.data, host.data(), host.size(), cudaMemcpyHostToDevice), "upload");
  }

  // Per-channel max of an activation batch on axis 1 (NCHW), float32.
  if (n >= 256LL * 64 * 56 * 56) {
    const std::vector<int64_t> shape = {256, 64, 56, 56};
    const int64_t count = 256LL * 64 * 56 * 56;
    auto calib = Must(MaxCalibrator::Create(context, {1}), "MaxCalibrator::Create");
    const double s = TimeCall([&] {
      Must(calib->Collect(BatchRef{src.data, DType::kFloat32, count}, shape), "Collect");
    });
    Emit("amax_per_channel_f32", count / s / 1e9, "G elem/s",
         ", \"shape\": \"256x64x56x56\", \"axis\": 1, \"vs_copy\": " +
             std::to_string(s / copy_time(4.0 * count)));
  }

  // Host memory through the staging pipeline: pageable and pinned, against a plain pinned copy.
  {
    const int64_t host_n = quick ? int64_t{1} << 24 : int64_t{1} << 28;
    const size_t host_bytes = static_cast<size_t>(host_n) * 4;
    const std::vector<uint8_t> pageable = RandomBytes(DType::kFloat32, host_n, 2);
    void* pinned = nullptr;
    Check(cudaMallocHost(&pinned, host_bytes), "cudaMallocHost");
    std::memcpy(pinned, pageable.data(), host_bytes);
    const double h2d_s = TimeStream(stream, [&] {
      Check(cudaMemcpyAsync(src.data, pinned, host_bytes, cudaMemcpyHostToDevice, stream), "h2d");
    });
    Emit("h2d_pinned_copy", host_bytes / h2d_s / 1e9, "GB/s");
    auto hist = Must(Histogram::Create(context, {.num_bins = 2048}), "Histogram::Create");
    Must(hist->Collect(BatchRef{pinned, DType::kFloat32, host_n}), "first Collect");
    const double pinned_s = TimeCall([&] {
      Must(hist->Collect(BatchRef{pinned, DType::kFloat32, host_n}), "pinned");
    });
    Emit("histogram_f32_host_pinned", host_bytes / pinned_s / 1e9, "GB/s",
         ", \"vs_h2d\": " + std::to_string(pinned_s / h2d_s));
    const double pageable_s = TimeCall([&] {
      Must(hist->Collect(BatchRef{pageable.data(), DType::kFloat32, host_n}), "pageable");
    });
    Emit("histogram_f32_host_pageable", host_bytes / pageable_s / 1e9, "GB/s",
         ", \"vs_h2d\": " + std::to_string(pageable_s / h2d_s));
    cudaFreeHost(pinned);
  }

  // The searches on 2048 and 8192 bins of a collected histogram (device-resident counts).
  for (const int bins : {2048, 8192}) {
    auto hist = Must(Histogram::Create(context, {.num_bins = bins}), "Histogram::Create");
    Must(hist->Collect(BatchRef{src.data, DType::kFloat32, int64_t{1} << 24}), "Collect");
    const SearchOptions options{.num_bits = 8};
    const auto ms = [](double s) { return s * 1e3; };
    Emit("entropy_search_" + std::to_string(bins), ms(TimeCall([&] {
           Must(EntropyAmax(*context, hist->DeviceCounts(), hist->Edges(), options), "entropy");
         })),
         "ms");
    Emit("mse_search_" + std::to_string(bins), ms(TimeCall([&] {
           Must(MseAmax(*context, hist->DeviceCounts(), hist->Edges(), options), "mse");
         })),
         "ms");
    Emit("percentile_search_" + std::to_string(bins), ms(TimeCall([&] {
           Must(PercentileAmax(*context, hist->DeviceCounts(), hist->Edges(), 99.99), "percentile");
         })),
         "ms");
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace qcal::kernels::cuda

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      qcal::kernels::cuda::quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
      return 2;
    }
  }
  auto context = qcal::kernels::cuda::Context::Create(0);
  if (!context.ok()) {
    std::printf("{\"name\": \"cuda_bench\", \"device\": \"cuda\", \"skipped\": \"%s\"}\n",
                std::string(context.status().message()).c_str());
    return 0;
  }
  qcal::kernels::cuda::Run(*context);
  return 0;
}
