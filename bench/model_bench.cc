// ComputeAmax of a whole model through server/core/model.h: 1000 histogram quantizers of 2048 bins
// (issue 8's figure: "1,000 quantizers take 457 ms while one of the two cores idles").
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/model.h"

namespace qcal::server {
namespace {

constexpr int kQuantizers = 1000;

std::shared_ptr<Model> ModelOfQuantizers() {
  static std::shared_ptr<Model> model = [] {
    std::shared_ptr<Model> made = *Model::Create({.name = "bench"});
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> values(16384);
    for (int q = 0; q < kQuantizers; ++q) {
      const float scale = 0.5f + static_cast<float>(q % 17);
      for (float& v : values) v = normal(rng) * scale;
      const std::vector<int64_t> shape = {static_cast<int64_t>(values.size())};
      (void)made->Record(absl::StrCat("layer", q, "._input_quantizer"), shape, values,
                         static_cast<int64_t>(values.size() * 4));
    }
    return made;
  }();
  return model;
}

void BM_ComputeAmaxModel(benchmark::State& state, const char* method) {
  std::shared_ptr<Model> model = ModelOfQuantizers();
  for (auto _ : state) {
    absl::StatusOr<AmaxTableForms> forms = model->ComputeAmax(
        {.params = {.method = method}}, {.message = true, .json = false, .trt_cache = false});
    if (!forms.ok()) state.SkipWithError(std::string(forms.status().message()).c_str());
    benchmark::DoNotOptimize(forms);
  }
}
BENCHMARK_CAPTURE(BM_ComputeAmaxModel, entropy, "entropy")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ComputeAmaxModel, mse, "mse")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_ComputeAmaxModel, percentile, "percentile")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace qcal::server

BENCHMARK_MAIN();
