// The mergeable histogram layout's costs (kernels/mergeable_histogram.h) beside the reference
// layout's, on 2.5e7 float32 N(0, 1) values (about a ResNet-18 step's conv inputs at batch 32):
// a trainer's CountMergeable, the server's Histogram::Collect in either layout, and
// MergeMergeable of states of 2048..4096 bins (states per second). Every core, wall clock.
//
//   qcal_bench_mergeable --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <random>
#include <span>
#include <vector>

#include "bench/bench_data.h"
#include "kernels/finite_abs_max.h"
#include "kernels/histogram.h"
#include "kernels/histogram_binning.h"
#include "kernels/mergeable_histogram.h"

namespace qcal::bench {
namespace {

constexpr int64_t kElements = 25'000'000;

std::span<const float> Values() {
  static const std::vector<float>* values = new std::vector<float>(NormalValues(kElements));
  return *values;
}

void SetRates(benchmark::State& state, int64_t elements) {
  state.SetItemsProcessed(state.iterations() * elements);
  state.SetBytesProcessed(state.iterations() * elements * static_cast<int64_t>(sizeof(float)));
}

// A trainer's pre-aggregation of one tensor: the max pass and the binning pass.
void BM_CountMergeable(benchmark::State& state) {
  const std::span<const float> x = Values();
  for (auto _ : state) {
    auto batch = kernels::CountMergeable(x, {.num_bins = state.range(0)});
    if (!batch.ok()) state.SkipWithError("CountMergeable failed");
    benchmark::DoNotOptimize(batch);
  }
  SetRates(state, static_cast<int64_t>(x.size()));
}

// The reference layout's hot loop alone (one fused bin + max pass against a known range).
void BM_BinAbsValues(benchmark::State& state) {
  const std::span<const float> x = Values();
  const float range = kernels::FiniteAbsMax(x).abs_max;
  for (auto _ : state) {
    kernels::BinnedBatch batch = kernels::BinAbsValues(x, range, state.range(0), false);
    benchmark::DoNotOptimize(batch);
  }
  SetRates(state, static_cast<int64_t>(x.size()));
}

// Histogram::Collect in steady state (the range covers the batch), in either layout
// (state.range(1): 0 reference, 1 mergeable).
void BM_HistogramCollect(benchmark::State& state) {
  const std::span<const float> x = Values();
  kernels::Histogram histogram({.num_bins = static_cast<int>(state.range(0)),
                                .layout = state.range(1) != 0
                                              ? kernels::HistogramLayout::kMergeable
                                              : kernels::HistogramLayout::kReference});
  if (!histogram.Collect(x).ok()) state.SkipWithError("first Collect failed");
  for (auto _ : state) {
    auto stats = histogram.Collect(x);
    if (!stats.ok()) state.SkipWithError("Collect failed");
    benchmark::DoNotOptimize(stats);
  }
  SetRates(state, static_cast<int64_t>(x.size()));
}

// States of num_bins 2048 (2049..4096 bins) with maxima spread over a few octaves, as trainers
// send them; each iteration merges all of them into a fresh state.
void BM_MergeMergeable(benchmark::State& state) {
  constexpr int kStates = 256;
  constexpr int64_t kNumBins = 2048;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> max_dist(1.0f, 8.0f);
  std::vector<kernels::MergeableState> states;
  for (int s = 0; s < kStates; ++s) {
    const float abs_max = max_dist(rng);
    kernels::MergeableState st{.exponent = kernels::MergeableExponent(abs_max, kNumBins),
                               .abs_max = abs_max};
    st.counts.resize(static_cast<size_t>(kernels::MergeableBinCount(abs_max, st.exponent)));
    for (uint64_t& c : st.counts) c = rng() % 10000;
    st.counts.back() += 1;
    states.push_back(std::move(st));
  }
  for (auto _ : state) {
    kernels::MergeableState merged;
    for (const kernels::MergeableState& s : states) {
      if (!kernels::MergeMergeable(merged, s, kNumBins).ok()) state.SkipWithError("merge failed");
    }
    benchmark::DoNotOptimize(merged);
  }
  state.SetItemsProcessed(state.iterations() * kStates);
}

BENCHMARK(BM_CountMergeable)
    ->ArgName("bins")
    ->Arg(2048)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BinAbsValues)
    ->ArgName("bins")
    ->Arg(2048)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HistogramCollect)
    ->ArgNames({"bins", "mergeable"})
    ->Args({2048, 0})
    ->Args({2048, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MergeMergeable)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace qcal::bench

BENCHMARK_MAIN();
