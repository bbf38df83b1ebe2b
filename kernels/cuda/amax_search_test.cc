// cuda::{Entropy,Mse,Percentile}Amax against their CPU twins (kernels/amax_search.h) on
// histograms of many shapes: the same index (or an exact tie of the CPU's scores), scores within
// 1e-9 relative, percentile bit for bit, and the same refusals.
#include "kernels/cuda/amax_search.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cuda_testing.h"
#include "kernels/histogram.h"

namespace qcal::kernels::cuda {
namespace {

using testing::TestContext;

// Scores are summed in another order on the device: 1e-9 relative, and an absolute floor of
// 1e-12 of the largest score for values that cancel (a KL divergence is a difference of sums
// about log(count) times larger than itself; tests/golden allows the reference 1e-12 too).
constexpr double kScoreRel = 1e-9;
constexpr double kScoreFloor = 1e-12;

bool SameScore(double gpu, double cpu, double scale) {
  if (std::isnan(gpu) || std::isnan(cpu)) return std::isnan(gpu) && std::isnan(cpu);
  if (std::isinf(gpu) || std::isinf(cpu)) return gpu == cpu;
  return std::abs(gpu - cpu) <=
         kScoreRel * std::max(std::abs(gpu), std::abs(cpu)) + kScoreFloor * std::max(scale, 1e-3);
}

// The largest finite |score|.
double Scale(const std::vector<double>& scores) {
  double scale = 0.0;
  for (const double s : scores) {
    if (std::isfinite(s)) scale = std::max(scale, std::abs(s));
  }
  return scale;
}

struct TestHistogram {
  std::string name;
  std::vector<uint64_t> counts;
  std::vector<float> edges;
};

std::vector<float> EdgesFor(size_t bins, float width) {
  std::vector<float> edges(bins + 1);
  for (size_t k = 0; k <= bins; ++k) edges[k] = static_cast<float>(k) * width;
  return edges;
}

std::vector<TestHistogram> Histograms() {
  std::vector<TestHistogram> out;
  std::mt19937_64 rng(42);
  // Real collections of random data (the server's case): 2048 and 8192 bins.
  for (const int bins : {2048, 8192}) {
    kernels::Histogram h({.num_bins = bins});
    const testing::RawBatch batch = testing::RandomBatch(DType::kFloat32, 200000, bins);
    EXPECT_TRUE(h.Collect(batch.decoded).ok());
    out.push_back({absl::StrCat("collected_", bins),
                   {h.Counts().begin(), h.Counts().end()},
                   {h.Edges().begin(), h.Edges().end()}});
  }
  // Laplace-like decays with empty bins in between, odd sizes.
  for (const int bins : {129, 1000, 2047, 3001}) {
    std::vector<uint64_t> counts(bins);
    for (int k = 0; k < bins; ++k) {
      const double mean = 1e6 * std::exp(-8.0 * k / bins);
      counts[k] = rng() % 5 == 0 ? 0 : static_cast<uint64_t>(mean * (0.5 + (rng() % 1000) / 1e3));
    }
    out.push_back({absl::StrCat("decay_", bins), counts, EdgesFor(bins, 0.01f)});
  }
  // Sparse: a few occupied bins; one bin only; huge counts; tiny histograms.
  std::vector<uint64_t> sparse(2048, 0);
  for (int k : {0, 3, 200, 777, 2047}) sparse[k] = 1 + rng() % 100;
  out.push_back({"sparse", sparse, EdgesFor(2048, 1.0f / 2048)});
  std::vector<uint64_t> spike(2048, 0);
  spike[1500] = 12345;
  out.push_back({"spike", spike, EdgesFor(2048, 0.5f)});
  std::vector<uint64_t> huge(2048);
  for (uint64_t& c : huge) c = (uint64_t{1} << 40) + rng() % (uint64_t{1} << 30);
  out.push_back({"huge_counts", huge, EdgesFor(2048, 3e-3f)});
  // Extreme magnitudes, searched in scaled units (kernels/mse_centers.h): the same choice.
  std::vector<uint64_t> decay(2047);
  for (int k = 0; k < 2047; ++k) decay[k] = static_cast<uint64_t>(1e6 * std::exp(-8.0 * k / 2047));
  out.push_back({"magnitude_1e-35", decay, EdgesFor(2047, 1e-38f)});
  out.push_back({"magnitude_3e38", decay, EdgesFor(2047, 1.6e35f)});
  for (const int bins : {1, 2, 5}) {
    std::vector<uint64_t> counts(bins);
    for (uint64_t& c : counts) c = rng() % 4;
    counts[0] += 1;
    out.push_back({absl::StrCat("tiny_", bins), counts, EdgesFor(bins, 1.0f)});
  }
  return out;
}

std::vector<SearchOptions> Options(int64_t bins) {
  std::vector<SearchOptions> out;
  for (const int num_bits : {4, 8, 12}) {
    for (const bool is_unsigned : {false, true}) {
      out.push_back(
          {.num_bits = num_bits, .is_unsigned = is_unsigned, .start_bin = 128, .stride = 1});
    }
  }
  out.push_back({.num_bits = 8, .is_unsigned = false, .start_bin = 1, .stride = 3});
  out.push_back({.num_bits = 8, .is_unsigned = false, .start_bin = 500, .stride = 7});
  out.push_back({.num_bits = 16, .is_unsigned = false, .start_bin = 1, .stride = 1});
  for (SearchOptions& o : out) o.start_bin = static_cast<int>(std::min<int64_t>(o.start_bin, bins));
  return out;
}

// The gpu's choice is the cpu's, or scores an exact tie of it on the cpu's own scores.
void ExpectSameChoice(const AmaxChoice& gpu, const AmaxChoice& cpu,
                      const std::vector<double>& cpu_scores, const SearchOptions& o,
                      const std::string& what) {
  if (gpu.index != cpu.index) {
    const double at_gpu = cpu_scores[(gpu.index - o.start_bin) / o.stride];
    EXPECT_TRUE(SameScore(at_gpu, cpu.score, Scale(cpu_scores)))
        << what << ": index " << gpu.index << " (cpu score there " << at_gpu << ") vs " << cpu.index
        << " (" << cpu.score << ")";
    return;
  }
  EXPECT_EQ(std::bit_cast<uint32_t>(gpu.amax), std::bit_cast<uint32_t>(cpu.amax)) << what;
  EXPECT_TRUE(SameScore(gpu.score, cpu.score, Scale(cpu_scores)))
      << what << ": " << gpu.score << " vs " << cpu.score;
}

void ExpectSameScores(const std::vector<double>& gpu, const std::vector<double>& cpu,
                      const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  const double scale = Scale(cpu);
  for (size_t k = 0; k < gpu.size(); ++k) {
    ASSERT_TRUE(SameScore(gpu[k], cpu[k], scale))
        << what << ": candidate " << k << " " << gpu[k] << " vs " << cpu[k];
  }
}

TEST(AmaxSearch, EntropyAndMseLikeTheCpu) {
  QCAL_REQUIRE_GPU();
  const Context& gpu = *TestContext();
  for (const TestHistogram& h : Histograms()) {
    testing::DeviceBytes device(h.counts.data(), h.counts.size() * sizeof(uint64_t));
    const std::span<const uint64_t> on_device(static_cast<const uint64_t*>(device.data()),
                                              h.counts.size());
    for (const SearchOptions& o : Options(static_cast<int64_t>(h.counts.size()))) {
      for (const bool device_counts : {false, true}) {
        const std::span<const uint64_t> counts =
            device_counts ? on_device : std::span<const uint64_t>(h.counts);
        const std::string what =
            absl::StrCat(h.name, " bits ", o.num_bits, o.is_unsigned ? "u" : "", " start ",
                         o.start_bin, " stride ", o.stride, device_counts ? " device" : " host");
        const auto cpu_kl = kernels::KlDivergences(h.counts, o);
        const auto gpu_kl = KlDivergences(gpu, counts, o);
        ASSERT_EQ(gpu_kl.status().code(), cpu_kl.status().code()) << what << gpu_kl.status();
        if (cpu_kl.ok()) ExpectSameScores(*gpu_kl, *cpu_kl, what + " kl");
        const auto cpu_entropy = kernels::EntropyAmax(h.counts, h.edges, o);
        const auto gpu_entropy = EntropyAmax(gpu, counts, h.edges, o);
        ASSERT_EQ(gpu_entropy.status().code(), cpu_entropy.status().code()) << what;
        if (cpu_entropy.ok()) ExpectSameChoice(*gpu_entropy, *cpu_entropy, *cpu_kl, o, what);

        SearchOptions mse_options = o;
        mse_options.start_bin = std::min<int>(o.start_bin, static_cast<int>(h.counts.size()) - 1);
        const auto cpu_errors = kernels::MseErrors(h.counts, h.edges, mse_options);
        const auto gpu_errors = MseErrors(gpu, counts, h.edges, mse_options);
        ASSERT_EQ(gpu_errors.status().code(), cpu_errors.status().code()) << what;
        if (cpu_errors.ok()) ExpectSameScores(*gpu_errors, *cpu_errors, what + " mse");
        const auto cpu_mse = kernels::MseAmax(h.counts, h.edges, mse_options);
        const auto gpu_mse = MseAmax(gpu, counts, h.edges, mse_options);
        ASSERT_EQ(gpu_mse.status().code(), cpu_mse.status().code()) << what;
        if (cpu_mse.ok()) ExpectSameChoice(*gpu_mse, *cpu_mse, *cpu_errors, mse_options, what);
      }
    }
  }
}

// FP8 runs the CPU's searches on the host (amax_search.h): the same bits, from host or device
// counts, and never the int answer.
TEST(AmaxSearch, Fp8IsTheCpuSearchBitForBit) {
  QCAL_REQUIRE_GPU();
  const Context& gpu = *TestContext();
  for (const TestHistogram& h : Histograms()) {
    if (h.counts.size() > 4096) continue;  // the FP8 mse is quadratic on the host
    testing::DeviceBytes device(h.counts.data(), h.counts.size() * sizeof(uint64_t));
    const std::span<const uint64_t> on_device(static_cast<const uint64_t*>(device.data()),
                                              h.counts.size());
    const int start = std::min<int>(128, static_cast<int>(h.counts.size()) - 1);
    const SearchOptions o = {.start_bin = start, .format = QuantFormat::kFp8E4M3};
    const SearchOptions as_int = {.start_bin = start};
    for (const bool device_counts : {false, true}) {
      const std::span<const uint64_t> counts =
          device_counts ? on_device : std::span<const uint64_t>(h.counts);
      const std::string what = absl::StrCat(h.name, device_counts ? " device" : " host");
      const auto cpu_kl = kernels::KlDivergences(h.counts, o);
      const auto gpu_kl = KlDivergences(gpu, counts, o);
      ASSERT_EQ(gpu_kl.status().code(), cpu_kl.status().code()) << what << gpu_kl.status();
      if (cpu_kl.ok()) {
        EXPECT_EQ(std::memcmp(gpu_kl->data(), cpu_kl->data(), cpu_kl->size() * sizeof(double)), 0)
            << what;
        const auto int_kl = kernels::KlDivergences(h.counts, as_int);
        ASSERT_TRUE(int_kl.ok());
        EXPECT_NE(std::memcmp(gpu_kl->data(), int_kl->data(), int_kl->size() * sizeof(double)), 0)
            << what;
      }
      const auto cpu_entropy = kernels::EntropyAmax(h.counts, h.edges, o);
      const auto gpu_entropy = EntropyAmax(gpu, counts, h.edges, o);
      ASSERT_EQ(gpu_entropy.status().code(), cpu_entropy.status().code()) << what;
      if (cpu_entropy.ok()) {
        EXPECT_EQ(gpu_entropy->index, cpu_entropy->index) << what;
      }
      const auto cpu_errors = kernels::MseErrors(h.counts, h.edges, o);
      const auto gpu_errors = MseErrors(gpu, counts, h.edges, o);
      ASSERT_EQ(gpu_errors.status().code(), cpu_errors.status().code()) << what;
      if (cpu_errors.ok()) {
        EXPECT_EQ(*gpu_errors, *cpu_errors) << what;
      }
      const auto cpu_mse = kernels::MseAmax(h.counts, h.edges, o);
      const auto gpu_mse = MseAmax(gpu, counts, h.edges, o);
      ASSERT_EQ(gpu_mse.status().code(), cpu_mse.status().code()) << what;
      if (cpu_mse.ok()) {
        EXPECT_EQ(gpu_mse->index, cpu_mse->index) << what;
        EXPECT_EQ(gpu_mse->score, cpu_mse->score) << what;
      }
    }
  }
}

TEST(AmaxSearch, PercentileBitForBit) {
  QCAL_REQUIRE_GPU();
  const Context& gpu = *TestContext();
  for (const TestHistogram& h : Histograms()) {
    testing::DeviceBytes device(h.counts.data(), h.counts.size() * sizeof(uint64_t));
    const std::span<const uint64_t> on_device(static_cast<const uint64_t*>(device.data()),
                                              h.counts.size());
    for (const double p : {1e-9, 50.0, 99.0, 99.9, 99.99, 99.999, 100.0}) {
      const auto cpu = kernels::PercentileAmax(h.counts, h.edges, p);
      for (const auto counts : {std::span<const uint64_t>(h.counts), on_device}) {
        const auto got = PercentileAmax(gpu, counts, h.edges, p);
        ASSERT_TRUE(cpu.ok() && got.ok()) << h.name << " " << got.status();
        EXPECT_EQ(got->index, cpu->index) << h.name << " " << p;
        EXPECT_EQ(std::bit_cast<uint64_t>(got->score), std::bit_cast<uint64_t>(cpu->score))
            << h.name << " " << p;
        EXPECT_EQ(std::bit_cast<uint32_t>(got->amax), std::bit_cast<uint32_t>(cpu->amax));
      }
    }
  }
}

TEST(AmaxSearch, RefusesWhatTheCpuRefuses) {
  QCAL_REQUIRE_GPU();
  const Context& gpu = *TestContext();
  const std::vector<uint64_t> counts = {0, 5, 3, 0, 1};
  const std::vector<uint64_t> zeros(5, 0);
  const std::vector<float> edges = EdgesFor(5, 1.0f);
  const std::vector<float> short_edges = EdgesFor(3, 1.0f);
  const SearchOptions bad_options[] = {{.num_bits = 1},
                                       {.num_bits = 8, .start_bin = 0},
                                       {.num_bits = 8, .start_bin = 6},
                                       {.num_bits = 8, .start_bin = 1, .stride = 0},
                                       {.num_bits = 17}};
  for (const SearchOptions& o : bad_options) {
    EXPECT_EQ(EntropyAmax(gpu, counts, edges, o).status(),
              kernels::EntropyAmax(counts, edges, o).status());
    EXPECT_EQ(MseAmax(gpu, counts, edges, o).status(), kernels::MseAmax(counts, edges, o).status());
  }
  const SearchOptions ok{.num_bits = 8, .start_bin = 1};
  EXPECT_EQ(EntropyAmax(gpu, zeros, edges, ok).status(),
            kernels::EntropyAmax(zeros, edges, ok).status());
  EXPECT_EQ(MseAmax(gpu, zeros, edges, ok).status(), kernels::MseAmax(zeros, edges, ok).status());
  EXPECT_EQ(PercentileAmax(gpu, zeros, edges, 99.0).status(),
            kernels::PercentileAmax(zeros, edges, 99.0).status());
  EXPECT_EQ(EntropyAmax(gpu, counts, short_edges, ok).status(),
            kernels::EntropyAmax(counts, short_edges, ok).status());
  for (const double p : {0.0, -1.0, 100.5, std::nan("")}) {
    EXPECT_EQ(PercentileAmax(gpu, counts, edges, p).status(),
              kernels::PercentileAmax(counts, edges, p).status());
  }
  EXPECT_EQ(EntropyAmax(gpu, {}, std::vector<float>{0.0f}, ok).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace qcal::kernels::cuda
