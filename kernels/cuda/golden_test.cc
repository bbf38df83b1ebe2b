// The golden cases (../../shared/golden, or $QCAL_GOLDEN_DIR) through the CUDA kernels: every
// histogram, max-calibrator and tensor_quant case runs on the GPU and on the CPU twin, which
// tests/golden checks against the reference; the GPU must give the CPU's results bit for bit
// (search scores within 1e-9), and each search the reference's index (or one of its listed ties)
// wherever the CPU does.
#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cuda/amax_search.h"
#include "kernels/cuda/cuda_testing.h"
#include "kernels/cuda/fake_quant.h"
#include "kernels/cuda/histogram.h"
#include "kernels/cuda/histogram_amax.h"
#include "kernels/cuda/max_calibrator.h"
#include "kernels/histogram_amax.h"
#include "kernels/max_calibrator.h"
#include "tests/golden/golden_dir.h"
#include "tests/golden/golden_values.h"

namespace qcal::kernels::cuda {
namespace {

using golden::Json;
using golden::ToFloat;
using golden::ToTensor;
using testing::TestContext;

Json LoadCases(const std::string& file) {
  const auto dir = golden::GoldenDirFromEnvironment(QCAL_SOURCE_DIR);
  EXPECT_TRUE(dir.ok()) << dir.status();
  if (!dir.ok()) return Json::array();
  const auto doc = golden::LoadGoldenFile(*dir, file);
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? doc->at("cases") : Json::array();
}

bool SameFloat(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
}

// Divergences: tests/golden's tolerance (1e-9 relative, 1e-12 absolute); mse: 1e-7 relative
// (the reference's is 1e-5; the device sums in another order); percentile: bit for bit.
bool SameScore(double a, double b, AmaxMethod method) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  const double diff = std::abs(a - b);
  const double size = std::max(std::abs(a), std::abs(b));
  switch (method) {
    case AmaxMethod::kEntropy:
      return diff <= 1e-9 * size + 1e-12;
    case AmaxMethod::kMse:
      return diff <= 1e-7 * size;
    case AmaxMethod::kPercentile:
    case AmaxMethod::kMax:
      break;
  }
  return a == b;
}

// The reference's index and its listed ties.
bool IsGoldenIndex(const Json& entry, int64_t index) {
  if (entry.contains("index") && !entry["index"].is_null() &&
      entry["index"].get<int64_t>() == index) {
    return true;
  }
  if (!entry.contains("tie_indices")) return false;
  for (const Json& t : entry["tie_indices"]) {
    if (t.get<int64_t>() == index) return true;
  }
  return false;
}

SearchOptions OptionsOf(const Json& params, const Json& kwargs) {
  return {.num_bits = params.at("num_bits").get<int>(),
          .is_unsigned = params.at("unsigned").get<bool>(),
          .start_bin = kwargs.value("start_bin", 128),
          .stride = kwargs.value("stride", 1)};
}

double PercentileOf(const Json& kwargs) {
  return kwargs.contains("percentile") ? golden::ToDouble(kwargs["percentile"])
                                       : kDefaultPercentile;
}

// One compute_amax entry on the CPU and on the GPU.
void CheckEntry(
    const std::string& what, const Json& params, const Json& entry,
    const std::function<absl::StatusOr<AmaxChoice>(AmaxMethod, const SearchOptions&, double)>& cpu,
    const std::function<absl::StatusOr<AmaxChoice>(AmaxMethod, const SearchOptions&, double)>&
        gpu) {
  const auto method = ParseAmaxMethod(entry.at("method").get<std::string>());
  if (!method.ok()) return;  // an unknown method never reaches a kernel
  const Json& kwargs = entry.at("kwargs");
  const SearchOptions options = OptionsOf(params, kwargs);
  const double percentile = PercentileOf(kwargs);
  const auto want = cpu(*method, options, percentile);
  const auto got = gpu(*method, options, percentile);
  ASSERT_EQ(got.status().code(), want.status().code())
      << what << ": gpu " << got.status() << ", cpu " << want.status();
  if (!want.ok()) return;
  if (got->index == want->index) {
    EXPECT_TRUE(SameFloat(got->amax, want->amax))
        << what << ": " << got->amax << " vs " << want->amax;
    EXPECT_TRUE(SameScore(got->score, want->score, *method))
        << what << ": score " << got->score << " vs " << want->score;
  }
  if (*method != AmaxMethod::kMax && IsGoldenIndex(entry, want->index)) {
    EXPECT_TRUE(IsGoldenIndex(entry, got->index))
        << what << ": index " << got->index << " is not the reference's " << entry.dump();
  } else {
    EXPECT_EQ(got->index, want->index) << what;
  }
}

void ExpectSameHistogram(const kernels::Histogram& cpu, const Histogram& gpu,
                         const std::string& what) {
  const auto counts = gpu.Counts();
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_TRUE(std::equal(counts->begin(), counts->end(), cpu.Counts().begin(), cpu.Counts().end()))
      << what << ": counts differ";
  EXPECT_TRUE(std::equal(gpu.Edges().begin(), gpu.Edges().end(), cpu.Edges().begin(),
                         cpu.Edges().end(), SameFloat))
      << what << ": edges differ";
  EXPECT_TRUE(SameFloat(gpu.abs_max(), cpu.abs_max())) << what;
  EXPECT_EQ(gpu.total(), cpu.total()) << what;
}

TEST(CudaGolden, HistogramCalibrator) {
  QCAL_REQUIRE_GPU();
  int cases = 0;
  for (const Json& golden_case : LoadCases("histogram_calibrator.json")) {
    const std::string name = golden_case.at("name").get<std::string>();
    const Json& params = golden_case.at("params");
    const Json& entries = golden_case.at("expected").at("compute_amax");
    ++cases;
    if (!params.at("torch_hist").get<bool>()) {
      // numpy's collection is not reproduced (tests/golden): only the searches, on the recorded
      // histogram; an entropy search leaves counts[0] := counts[1] for the ones after it.
      const Json& expected = golden_case.at("expected");
      std::vector<uint64_t> counts = expected.at("calib_hist").get<std::vector<uint64_t>>();
      std::vector<float> edges;
      for (const Json& e : expected.at("calib_bin_edges")) edges.push_back(ToFloat(e));
      for (size_t k = 0; k < entries.size(); ++k) {
        const std::vector<uint64_t> snapshot = counts;
        const auto run = [&](bool on_gpu) {
          return [&, on_gpu](AmaxMethod method, const SearchOptions& o,
                             double p) -> absl::StatusOr<AmaxChoice> {
            switch (method) {
              case AmaxMethod::kEntropy:
                return on_gpu ? EntropyAmax(*TestContext(), snapshot, edges, o)
                              : kernels::EntropyAmax(snapshot, edges, o);
              case AmaxMethod::kMse:
                return on_gpu ? MseAmax(*TestContext(), snapshot, edges, o)
                              : kernels::MseAmax(snapshot, edges, o);
              case AmaxMethod::kPercentile:
                return on_gpu ? PercentileAmax(*TestContext(), snapshot, edges, p)
                              : kernels::PercentileAmax(snapshot, edges, p);
              case AmaxMethod::kMax:
                break;
            }
            return absl::InvalidArgumentError("not a search");
          };
        };
        CheckEntry(absl::StrCat(name, " compute_amax[", k, "]"), params, entries[k], run(false),
                   run(true));
        if (entries[k].at("method") == "entropy" && counts.size() > 1) counts[0] = counts[1];
      }
      continue;
    }
    kernels::Histogram::Options options{.num_bins = params.at("num_bins").get<int>(),
                                        .skip_zeros = params.at("skip_zeros").get<bool>()};
    if (!params.at("axis").is_null()) options.axis = params.at("axis").get<int>();
    const auto cpu_created = kernels::Histogram::Create(options);
    auto gpu_created = Histogram::Create(TestContext(), options);
    ASSERT_EQ(gpu_created.status().code(), cpu_created.status().code()) << name;
    if (!cpu_created.ok()) continue;
    kernels::Histogram cpu = *cpu_created;
    Histogram& gpu = **gpu_created;
    const Json& batches = golden_case.at("batches");
    for (size_t b = 0; b < batches.size(); ++b) {
      const golden::GoldenTensor batch = ToTensor(batches[b]);
      const auto want = cpu.Collect(batch.data);
      const auto got = gpu.Collect(batch.data);
      ASSERT_EQ(got.status().code(), want.status().code()) << name << " batch " << b;
      if (want.ok()) {
        EXPECT_EQ(got->nonfinite, want->nonfinite) << name << " batch " << b;
      }
      ExpectSameHistogram(cpu, gpu, absl::StrCat(name, " after batch ", b));
      if (!want.ok()) break;  // the reference's run ends at its error too
    }
    for (size_t k = 0; k < entries.size(); ++k) {
      CheckEntry(
          absl::StrCat(name, " compute_amax[", k, "]"), params, entries[k],
          [&](AmaxMethod m, const SearchOptions& o, double p) {
            return kernels::HistogramAmax(cpu, m, o, p);
          },
          [&](AmaxMethod m, const SearchOptions& o, double p) {
            return HistogramAmax(gpu, m, o, p);
          });
    }
  }
  EXPECT_GT(cases, 0);
}

TEST(CudaGolden, MaxCalibrator) {
  QCAL_REQUIRE_GPU();
  int cases = 0;
  for (const Json& golden_case : LoadCases("max_calibrator.json")) {
    const std::string name = golden_case.at("name").get<std::string>();
    const Json& axis = golden_case.at("params").at("axis");
    std::vector<int> axes;
    if (axis.is_array()) {
      axes = axis.get<std::vector<int>>();
    } else if (!axis.is_null()) {
      axes = {axis.get<int>()};
    }
    kernels::MaxCalibrator cpu(axes);
    auto gpu = MaxCalibrator::Create(TestContext(), axes);
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    ++cases;
    for (const Json& batch_json : golden_case.at("batches")) {
      const golden::GoldenTensor batch = ToTensor(batch_json);
      const auto want = cpu.Collect(batch.data, batch.shape);
      const auto got = (*gpu)->Collect(batch.data, batch.shape);
      ASSERT_EQ(got.status().code(), want.status().code()) << name << ": " << got.status();
      if (want.ok()) {
        EXPECT_EQ(got->nonfinite, want->nonfinite) << name;
      }
    }
    const auto amax = (*gpu)->amax();
    ASSERT_TRUE(amax.ok()) << amax.status();
    EXPECT_TRUE(
        std::equal(amax->begin(), amax->end(), cpu.amax().begin(), cpu.amax().end(), SameFloat))
        << name;
    EXPECT_EQ((*gpu)->channel_shape(), cpu.channel_shape()) << name;
  }
  EXPECT_GT(cases, 0);
}

TEST(CudaGolden, TensorQuant) {
  QCAL_REQUIRE_GPU();
  int cases = 0;
  for (const Json& golden_case : LoadCases("tensor_quant.json")) {
    const std::string name = golden_case.at("name").get<std::string>();
    const Json& p = golden_case.at("params");
    const QuantParams params{p.at("num_bits").get<int>(), p.at("unsigned").get<bool>(),
                             p.at("narrow_range").get<bool>()};
    const golden::GoldenTensor x = ToTensor(golden_case.at("input"));
    const golden::GoldenTensor amax = ToTensor(golden_case.at("amax"));
    const TensorView x_view{x.data, x.shape};
    const TensorView amax_view{amax.data, amax.shape};
    ++cases;
    const auto cpu_q = kernels::TensorQuant(x_view, amax_view, params);
    const auto cpu_f = kernels::FakeTensorQuant(x_view, amax_view, params);
    // Room for any broadcast output, so that a wrong success could not write past the end.
    std::vector<float> out(x.data.size() * std::max<size_t>(amax.data.size(), 1) + 1);
    std::vector<float> scale;
    const auto gpu_q = TensorQuant(*TestContext(), BatchRef::Float32(x.data), x.shape, amax_view,
                                   params, out.data(), &scale);
    ASSERT_EQ(gpu_q.status().code(), cpu_q.status().code()) << name << ": " << gpu_q.status();
    if (cpu_q.ok()) {
      EXPECT_TRUE(std::equal(cpu_q->quantized.data.begin(), cpu_q->quantized.data.end(),
                             out.begin(), SameFloat))
          << name << ": quantized";
      EXPECT_TRUE(std::equal(scale.begin(), scale.end(), cpu_q->scale.data.begin(),
                             cpu_q->scale.data.end(), SameFloat))
          << name << ": scale";
    }
    const auto gpu_f = FakeTensorQuant(*TestContext(), BatchRef::Float32(x.data), x.shape,
                                       amax_view, params, out.data());
    ASSERT_EQ(gpu_f.status().code(), cpu_f.status().code()) << name;
    if (cpu_f.ok()) {
      EXPECT_TRUE(std::equal(cpu_f->data.begin(), cpu_f->data.end(), out.begin(), SameFloat))
          << name << ": fake";
    }
  }
  EXPECT_GT(cases, 0);
}

}  // namespace
}  // namespace qcal::kernels::cuda
