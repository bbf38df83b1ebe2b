// Runs every case of the golden families (../shared/golden/README.md) through qcal's kernels and
// prints one line per family, e.g.
//   golden histogram_calibrator: 38/38 cases passed (10 deviations: all_zero, ...)
// The folder is QCAL_GOLDEN_DIR (absolute or relative to the repository root), by default
// ../shared/golden next to the repository; a missing or empty folder or file fails.
#include <cstdio>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/golden/deviations.h"
#include "tests/golden/golden_dir.h"
#include "tests/golden/golden_families.h"

namespace qcal::golden {
namespace {

using Runner = std::function<std::optional<CaseReport>(const Json&)>;

void RunFamily(const std::string& family, const std::string& file, const Runner& run,
               const std::string& not_run_note = "") {
  const auto dir = GoldenDirFromEnvironment(QCAL_SOURCE_DIR);
  ASSERT_TRUE(dir.ok()) << dir.status();
  const auto doc = LoadGoldenFile(*dir, file);
  ASSERT_TRUE(doc.ok()) << doc.status();

  int total = 0;
  int passed = 0;
  int not_run = 0;
  std::vector<std::string> deviations;
  for (const Json& golden_case : doc->at("cases")) {
    const std::string name = golden_case.at("name").get<std::string>();
    const Deviation* deviation = FindDeviation(family, name);
    std::optional<CaseReport> report;
    try {
      report = deviation != nullptr ? std::optional<CaseReport>(deviation->check(golden_case))
                                    : run(golden_case);
    } catch (const std::exception& e) {
      report = CaseReport();
      report->Fail(absl::StrCat("exception: ", e.what()));
    }
    if (!report.has_value()) {
      ++not_run;
      continue;
    }
    ++total;
    if (deviation != nullptr) deviations.push_back(name);
    if (report->ok()) {
      ++passed;
    } else {
      ADD_FAILURE() << "golden " << family << " case " << name << ": "
                    << absl::StrJoin(report->failures(), "; ");
    }
  }
  for (const Deviation& d : Deviations()) {
    if (d.family == family &&
        std::find(deviations.begin(), deviations.end(), d.name) == deviations.end()) {
      ADD_FAILURE() << "deviation " << d.name << " names no case of " << file;
    }
  }
  std::string line =
      absl::StrCat("golden ", family, ": ", passed, "/", total, " cases passed (",
                   deviations.size(), deviations.size() == 1 ? " deviation" : " deviations");
  if (!deviations.empty()) absl::StrAppend(&line, ": ", absl::StrJoin(deviations, ", "));
  if (not_run > 0) absl::StrAppend(&line, "; ", not_run, " ", not_run_note);
  std::printf("%s)\n", line.c_str());
  std::fflush(stdout);
  EXPECT_GT(total, 0);
  EXPECT_EQ(passed, total);
}

TEST(golden, TensorQuant) {
  RunFamily("tensor_quant", "tensor_quant.json",
            [](const Json& c) { return std::optional<CaseReport>(RunTensorQuantCase(c)); });
}

TEST(golden, MaxCalibrator) {
  RunFamily("max_calibrator", "max_calibrator.json",
            [](const Json& c) { return std::optional<CaseReport>(RunMaxCalibratorCase(c)); });
}

TEST(golden, HistogramCalibrator) {
  RunFamily("histogram_calibrator", "histogram_calibrator.json",
            [](const Json& c) { return std::optional<CaseReport>(RunHistogramCase(c)); });
}

TEST(golden, SteBackward) {
  RunFamily("ste_backward", "ste_backward.json", RunSteBackwardCase,
            "learn_amax cases not run: TensorQuantizer's learnable range belongs to quant/");
}

}  // namespace
}  // namespace qcal::golden
