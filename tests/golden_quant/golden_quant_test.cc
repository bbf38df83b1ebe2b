// Runs every case of the five golden families (../shared/golden/README.md) through quant/'s API
// and prints one line per family, e.g.
//   golden quant tensor_quantizer: 43/43 cases passed (5 deviations: ...)
// The folder is QCAL_GOLDEN_DIR (absolute or relative to the repository root), by default
// ../shared/golden next to the repository; a missing or empty folder or file fails.
#include <functional>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "tests/golden/family_runner.h"
#include "tests/golden_quant/quant_golden.h"

namespace qcal::golden_quant {
namespace {

void RunQuantFamily(const std::string& family, CaseReport (*run)(const Json&)) {
  golden::RunFamily({.suite = "golden quant",
                     .family = family,
                     .file = family + ".json",
                     .run = [run](const Json& c) { return std::optional<CaseReport>(run(c)); },
                     .deviations = &QuantDeviations(),
                     .not_run_note = ""},
                    QCAL_SOURCE_DIR);
}

TEST(golden_quant, TensorQuant) { RunQuantFamily("tensor_quant", RunTensorQuantCase); }

TEST(golden_quant, SteBackward) { RunQuantFamily("ste_backward", RunSteBackwardCase); }

TEST(golden_quant, MaxCalibrator) { RunQuantFamily("max_calibrator", RunMaxCalibratorCase); }

TEST(golden_quant, HistogramCalibrator) {
  RunQuantFamily("histogram_calibrator", RunHistogramCase);
}

TEST(golden_quant, TensorQuantizer) { RunQuantFamily("tensor_quantizer", RunTensorQuantizerCase); }

}  // namespace
}  // namespace qcal::golden_quant
