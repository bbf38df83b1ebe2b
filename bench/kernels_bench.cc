// CPU kernel throughput against the memory-bandwidth limit measured in the same run, and the amax
// searches on 2048 and 8192 bins (mse also on 2^17 and 2^20, and as it was before it was
// bounded). Each kernel uses every core (as the server runs it), so the figures are wall-clock
// rates.
//
//   qcal_bench_kernels --benchmark_repetitions=5 --benchmark_format=json
#include <benchmark/benchmark.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <span>
#include <vector>

#include "bench/bench_data.h"
#include "kernels/amax_search.h"
#include "kernels/finite_abs_max.h"
#include "kernels/histogram.h"
#include "kernels/max_calibrator.h"
#include "kernels/mse_amax_internal.h"
#include "kernels/parallel.h"

namespace qcal::bench {
namespace {

// The 16M-element tensor in buffers of either page size (state.range: 0 for 4 KiB pages, 1 for
// 2 MiB pages), made once.
const FloatBuffer& Tensor(int64_t huge) {
  static const FloatBuffer* tensors[2] = {};
  const FloatBuffer*& tensor = tensors[huge != 0];
  if (tensor == nullptr) {
    auto* made = new FloatBuffer(kTensorElements, huge != 0 ? Pages::k2MiB : Pages::k4KiB);
    const std::vector<float> values = NormalValues(kTensorElements);
    std::copy(values.begin(), values.end(), made->span().begin());
    tensor = made;
  }
  return *tensor;
}

void SetRates(benchmark::State& state, int64_t elements, int64_t bytes) {
  state.SetItemsProcessed(state.iterations() * elements);
  state.SetBytesProcessed(state.iterations() * bytes);
}

// The limit: a plain copy of the tensor's bytes with every core (each core copies its slice),
// into a buffer of the same page size.
void BM_Copy(benchmark::State& state) {
  const std::span<const float> src = Tensor(state.range(0)).span();
  FloatBuffer dst_buffer(kTensorElements, state.range(0) != 0 ? Pages::k2MiB : Pages::k4KiB);
  float* dst = dst_buffer.span().data();
  const int64_t n = static_cast<int64_t>(src.size());
  for (auto _ : state) {
    kernels::ParallelFor(n, kernels::MaxParallelism(), [&](int, int64_t begin, int64_t end) {
      std::memcpy(dst + begin, src.data() + begin,
                  static_cast<size_t>(end - begin) * sizeof(float));
    });
    benchmark::DoNotOptimize(dst);
    benchmark::ClobberMemory();
  }
  SetRates(state, n, n * static_cast<int64_t>(sizeof(float)));
}

// Steady state: the histogram's range already covers every value, as for all batches after the
// first few of a calibration run.
void BM_HistogramCollect(benchmark::State& state) {
  const std::span<const float> x = Tensor(state.range(1)).span();
  kernels::Histogram histogram({.num_bins = static_cast<int>(state.range(0))});
  if (!histogram.Collect(x).ok()) state.SkipWithError("first Collect failed");
  for (auto _ : state) {
    absl::StatusOr<kernels::CollectStats> stats = histogram.Collect(x);
    if (!stats.ok()) state.SkipWithError("Collect failed");
    benchmark::DoNotOptimize(stats);
  }
  const int64_t n = static_cast<int64_t>(x.size());
  SetRates(state, n, n * static_cast<int64_t>(sizeof(float)));
}

// The finite max |x| reduction alone, and through MaxCalibrator (per tensor), the reference's
// max collect.
void BM_FiniteAbsMax(benchmark::State& state) {
  const std::span<const float> x = Tensor(state.range(0)).span();
  for (auto _ : state) benchmark::DoNotOptimize(kernels::FiniteAbsMax(x));
  const int64_t n = static_cast<int64_t>(x.size());
  SetRates(state, n, n * static_cast<int64_t>(sizeof(float)));
}

void BM_MaxCalibratorCollect(benchmark::State& state) {
  const std::span<const float> x = Tensor(state.range(0)).span();
  const int64_t n = static_cast<int64_t>(x.size());
  const std::vector<int64_t> shape = {n / 4096, 4096};
  kernels::MaxCalibrator calibrator(std::nullopt);
  for (auto _ : state) {
    absl::StatusOr<kernels::CollectStats> stats = calibrator.Collect(x, shape);
    if (!stats.ok()) state.SkipWithError("Collect failed");
    benchmark::DoNotOptimize(stats);
  }
  SetRates(state, n, n * static_cast<int64_t>(sizeof(float)));
}

// A histogram of `bins` bins over 4M normal values (range set by the first batch), as
// pytorch-quantization's HistogramCalibrator would hand it to compute_amax.
const kernels::Histogram& SearchHistogram(int bins) {
  static auto* cache = new std::vector<std::pair<int, kernels::Histogram>>();
  for (const auto& [b, h] : *cache) {
    if (b == bins) return h;
  }
  kernels::Histogram histogram({.num_bins = bins});
  (void)histogram.Collect(Tensor(0).span().first(size_t{1} << 22));
  cache->emplace_back(bins, std::move(histogram));
  return cache->back().second;
}

void BM_EntropySearch(benchmark::State& state) {
  const kernels::Histogram& h = SearchHistogram(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<kernels::AmaxChoice> choice =
        kernels::EntropyAmax(h.Counts(), h.Edges(), {.num_bits = 8});
    if (!choice.ok()) state.SkipWithError("EntropyAmax failed");
    benchmark::DoNotOptimize(choice);
  }
}

void BM_MseSearch(benchmark::State& state) {
  const kernels::Histogram& h = SearchHistogram(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<kernels::AmaxChoice> choice =
        kernels::MseAmax(h.Counts(), h.Edges(), {.num_bits = 8});
    if (!choice.ok()) state.SkipWithError("MseAmax failed");
    benchmark::DoNotOptimize(choice);
  }
  // What the bounded search left to each tier (mse_amax.cc).
  kernels::internal::MseSearchStats stats;
  (void)kernels::internal::MseAmaxWithStats(h.Counts(), h.Edges(), {.num_bits = 8}, &stats);
  state.counters["direct"] = static_cast<double>(stats.direct);
  state.counters["pruned"] = static_cast<double>(stats.pruned);
  state.counters["coarse"] = static_cast<double>(stats.coarse);
  state.counters["fine"] = static_cast<double>(stats.fine);
  state.counters["rescored"] = static_cast<double>(stats.rescored);
}

// Today's mse search before it was bounded (one candidate at a time, O(candidates x occupied)),
// for before/after figures on one machine; it also checks that both choose the same bits.
void BM_MseSearchQuadratic(benchmark::State& state) {
  const kernels::Histogram& h = SearchHistogram(static_cast<int>(state.range(0)));
  absl::StatusOr<kernels::AmaxChoice> choice;
  for (auto _ : state) {
    choice = kernels::internal::MseAmaxQuadratic(h.Counts(), h.Edges(), {.num_bits = 8});
    benchmark::DoNotOptimize(choice);
  }
  const absl::StatusOr<kernels::AmaxChoice> bounded =
      kernels::MseAmax(h.Counts(), h.Edges(), {.num_bits = 8});
  if (!choice.ok() || !bounded.ok() || choice->index != bounded->index ||
      std::bit_cast<uint64_t>(choice->score) != std::bit_cast<uint64_t>(bounded->score)) {
    state.SkipWithError("the bounded and the quadratic mse searches chose differently");
  }
}

// FP8 E4M3 (issue 12): candidates scored by rounding to E4M3 instead of an integer grid
// (kernels/fp8_search.h), on the same histograms.
void BM_EntropySearchFp8(benchmark::State& state) {
  const kernels::Histogram& h = SearchHistogram(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<kernels::AmaxChoice> choice = kernels::EntropyAmax(
        h.Counts(), h.Edges(), {.format = kernels::QuantFormat::kFp8E4M3});
    if (!choice.ok()) state.SkipWithError("EntropyAmax (FP8) failed");
    benchmark::DoNotOptimize(choice);
  }
}

void BM_MseSearchFp8(benchmark::State& state) {
  const kernels::Histogram& h = SearchHistogram(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<kernels::AmaxChoice> choice =
        kernels::MseAmax(h.Counts(), h.Edges(), {.format = kernels::QuantFormat::kFp8E4M3});
    if (!choice.ok()) state.SkipWithError("MseAmax (FP8) failed");
    benchmark::DoNotOptimize(choice);
  }
}

void BM_PercentileSearch(benchmark::State& state) {
  const kernels::Histogram& h = SearchHistogram(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    absl::StatusOr<kernels::AmaxChoice> choice =
        kernels::PercentileAmax(h.Counts(), h.Edges(), 99.99);
    if (!choice.ok()) state.SkipWithError("PercentileAmax failed");
    benchmark::DoNotOptimize(choice);
  }
}

// Best of the repetitions: the lowest time, and the highest rate.
double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double Max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

#define QCAL_BENCH(bm)                \
  BENCHMARK(bm)                       \
      ->UseRealTime()                 \
      ->Unit(benchmark::kMillisecond) \
      ->ComputeStatistics("min", Min) \
      ->ComputeStatistics("max", Max)

QCAL_BENCH(BM_Copy)->ArgName("huge")->Arg(0)->Arg(1);
QCAL_BENCH(BM_HistogramCollect)->ArgNames({"bins", "huge"})->Args({2048, 0})->Args({2048, 1});
QCAL_BENCH(BM_FiniteAbsMax)->ArgName("huge")->Arg(0)->Arg(1);
QCAL_BENCH(BM_MaxCalibratorCollect)->ArgName("huge")->Arg(0)->Arg(1);
QCAL_BENCH(BM_EntropySearch)->ArgName("bins")->Arg(2048)->Arg(8192);
// 2^17 and 2^20 bins: histograms of that size are legitimate (a wide range at a fine
// resolution); bench/run.sh leaves out 2^20 and the quadratic search (seconds) to stay fast.
QCAL_BENCH(BM_MseSearch)->ArgName("bins")->Arg(2048)->Arg(8192)->Arg(1 << 17)->Arg(1 << 20);
QCAL_BENCH(BM_MseSearchQuadratic)->ArgName("bins")->Arg(2048)->Arg(8192)->Arg(1 << 17);
QCAL_BENCH(BM_PercentileSearch)->ArgName("bins")->Arg(2048)->Arg(8192);
QCAL_BENCH(BM_EntropySearchFp8)->ArgName("bins")->Arg(2048)->Arg(8192);
QCAL_BENCH(BM_MseSearchFp8)->ArgName("bins")->Arg(2048)->Arg(8192)->Arg(1 << 17);

}  // namespace
}  // namespace qcal::bench

BENCHMARK_MAIN();
