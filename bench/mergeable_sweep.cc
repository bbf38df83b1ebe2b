// The long property sweep of the mergeable histogram layout (CI runs a few seeds of the same
// property in kernels/mergeable_histogram_test.cc): for many seeds, values of many kinds are
// counted whole, and again shuffled, re-batched at random sizes and split over 1..16 parts (each
// part raw through Histogram::Collect or pre-aggregated by CountMergeable), the parts merged in a
// random tree shape. Every way must give the same MergeableState and the same amax by every
// method (entropy, mse, percentile 99.9 and 99.99, max), bit for bit. Exits 1 at the first
// difference.
//
//   qcal_mergeable_sweep [seeds=200] [max_elements=2000000] [first_seed=1]
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "kernels/histogram.h"
#include "kernels/histogram_amax.h"
#include "kernels/mergeable_histogram.h"

namespace qcal::kernels {
namespace {

std::vector<float> Values(std::mt19937_64& rng, size_t n) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::exponential_distribution<float> expo(1.0f);
  const int kind = static_cast<int>(rng() % 6);
  const float scale = std::array{1.0f, 1e-3f, 1e3f, 1e-40f, 1e-20f, 3e37f}[rng() % 6];
  std::vector<float> x(n);
  for (float& v : x) {
    switch (kind) {
      case 0:
        v = normal(rng);
        break;
      case 1:
        v = std::max(0.0f, normal(rng));
        break;  // ReLU: half zeros
      case 2:
        v = (rng() % 2 ? 1.0f : -1.0f) * expo(rng);
        break;  // Laplace
      case 3:
        v = std::ldexp(static_cast<float>(rng() % 4096), -12);
        break;  // on bin edges
      case 4:
        v = std::exp(2.0f * normal(rng));
        break;  // heavy tail
      default:
        v = static_cast<float>(rng() % 7) - 3.0f;
        break;  // few distinct values
    }
    v *= scale;
  }
  const size_t specials = rng() % 8;
  for (size_t i = 0; i < specials && n > 0; ++i) {
    const float special = std::array{std::numeric_limits<float>::quiet_NaN(),
                                     std::numeric_limits<float>::infinity(),
                                     -std::numeric_limits<float>::infinity(),
                                     1e30f,
                                     0.0f,
                                     std::numeric_limits<float>::max(),
                                     0x1p-149f,
                                     std::numeric_limits<float>::denorm_min()}[rng() % 8];
    x[rng() % n] = special;
  }
  return x;
}

std::vector<float> AllAmax(const Histogram& h) {
  std::vector<float> out;
  const int bins = static_cast<int>(h.Counts().size());
  const SearchOptions search{.num_bits = 8, .start_bin = std::max(1, std::min(128, bins - 1))};
  for (const AmaxMethod method :
       {AmaxMethod::kMax, AmaxMethod::kEntropy, AmaxMethod::kMse, AmaxMethod::kPercentile}) {
    for (const double p : {99.9, 99.99}) {
      if (method != AmaxMethod::kPercentile && p != 99.9) continue;
      auto choice = HistogramAmax(h, method, search, p);
      out.push_back(choice.ok() ? choice->amax : -static_cast<float>(choice.status().raw_code()));
    }
  }
  return out;
}

bool RunSeed(uint64_t seed, size_t max_elements) {
  std::mt19937_64 rng(seed);
  const size_t n = 1 + rng() % max_elements;
  const int num_bins = std::array{1, 2, 3, 128, 1000, 2048, 2048, 8192}[rng() % 8];
  const bool skip_zeros = rng() % 4 == 0;
  const Histogram::Options options{
      .num_bins = num_bins, .skip_zeros = skip_zeros, .layout = HistogramLayout::kMergeable};
  std::vector<float> x = Values(rng, n);

  Histogram whole(options);
  if (!whole.Collect(x).ok()) return false;
  const MergeableState want = *whole.ExportMergeable();
  const std::vector<float> want_amax = AllAmax(whole);
  if (!ValidateMergeableState(want, num_bins).ok()) {
    std::printf("seed %llu: the whole state is not canonical\n", (unsigned long long)seed);
    return false;
  }

  std::shuffle(x.begin(), x.end(), rng);
  const size_t parts = 1 + rng() % 16;
  std::vector<Histogram> raw(parts, Histogram(options));
  std::vector<MergeableState> pre(parts);
  std::vector<bool> collected(parts, false);
  for (size_t begin = 0; begin < n;) {
    const size_t size = std::min(n - begin, 1 + rng() % (n / 3 + 1));
    const std::span<const float> batch(x.data() + begin, size);
    const size_t part = rng() % parts;
    if (part % 2 == 0) {
      if (!raw[part].Collect(batch).ok()) return false;
    } else {
      auto counted = CountMergeable(batch, {.num_bins = num_bins, .skip_zeros = skip_zeros});
      if (!counted.ok() || !MergeMergeable(pre[part], counted->state, num_bins).ok()) return false;
    }
    collected[part] = true;
    begin += size;
  }
  std::vector<MergeableState> states;
  for (size_t p = 0; p < parts; ++p) {
    if (!collected[p]) continue;
    states.push_back(p % 2 == 0 ? *raw[p].ExportMergeable() : pre[p]);
  }
  while (states.size() > 1) {
    const size_t a = rng() % states.size();
    size_t b = rng() % (states.size() - 1);
    if (b >= a) ++b;
    if (!MergeMergeable(states[a], states[b], num_bins).ok()) return false;
    states.erase(states.begin() + static_cast<std::ptrdiff_t>(b));
  }
  Histogram merged(options);
  if (!merged.MergeMergeable(states[0]).ok()) return false;
  const bool same_state = states[0] == want;
  const bool same_amax = AllAmax(merged) == want_amax;
  if (!same_state || !same_amax) {
    std::printf("seed %llu: n %zu num_bins %d skip_zeros %d parts %zu: %s differs\n",
                (unsigned long long)seed, n, num_bins, skip_zeros, parts,
                same_state ? "amax" : "state");
    return false;
  }
  return true;
}

}  // namespace
}  // namespace qcal::kernels

int main(int argc, char** argv) {
  const long seeds = argc > 1 ? std::atol(argv[1]) : 200;
  const long max_elements = argc > 2 ? std::atol(argv[2]) : 2'000'000;
  const long first = argc > 3 ? std::atol(argv[3]) : 1;
  for (long s = first; s < first + seeds; ++s) {
    if (!qcal::kernels::RunSeed(static_cast<uint64_t>(s), static_cast<size_t>(max_elements))) {
      std::printf("FAILED at seed %ld\n", s);
      return 1;
    }
    if ((s - first + 1) % 20 == 0) std::printf("%ld seeds passed\n", s - first + 1);
  }
  std::printf("all %ld seeds passed (max %ld elements each)\n", seeds, max_elements);
  return 0;
}
