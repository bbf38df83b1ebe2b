// Runs every case of the golden families (../shared/golden/README.md) through qcal's kernels and
// prints one line per family, e.g.
//   golden histogram_calibrator: 38/38 cases passed (10 deviations: all_zero, ...)
// The folder is QCAL_GOLDEN_DIR (absolute or relative to the repository root), by default
// ../shared/golden next to the repository; a missing or empty folder or file fails.
#include <functional>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "tests/golden/deviations.h"
#include "tests/golden/family_runner.h"
#include "tests/golden/golden_families.h"

namespace qcal::golden {
namespace {

void RunKernelFamily(const std::string& family, const std::string& file,
                     std::function<std::optional<CaseReport>(const Json&)> run,
                     const std::string& not_run_note = "") {
  RunFamily({.suite = "golden",
             .family = family,
             .file = file,
             .run = std::move(run),
             .deviations = &Deviations(),
             .not_run_note = not_run_note},
            QCAL_SOURCE_DIR);
}

TEST(golden, TensorQuant) {
  RunKernelFamily("tensor_quant", "tensor_quant.json",
                  [](const Json& c) { return std::optional<CaseReport>(RunTensorQuantCase(c)); });
}

TEST(golden, MaxCalibrator) {
  RunKernelFamily("max_calibrator", "max_calibrator.json",
                  [](const Json& c) { return std::optional<CaseReport>(RunMaxCalibratorCase(c)); });
}

TEST(golden, HistogramCalibrator) {
  RunKernelFamily("histogram_calibrator", "histogram_calibrator.json",
                  [](const Json& c) { return std::optional<CaseReport>(RunHistogramCase(c)); });
}

TEST(golden, SteBackward) {
  RunKernelFamily("ste_backward", "ste_backward.json", RunSteBackwardCase,
                  "learn_amax cases not run here: tests/golden_quant runs them through quant/'s "
                  "TensorQuantizer");
}

}  // namespace
}  // namespace qcal::golden
