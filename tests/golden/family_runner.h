// Runs every case of one golden family and prints the family's line, e.g.
//   golden histogram_calibrator: 38/38 cases passed (10 deviations: all_zero, ...)
// Shared by the kernel suite (golden_test) and the quant/ suite (../golden_quant). A case listed
// in `deviations` runs its deviation check instead of the ordinary runner; every deviation must
// name a case of the file; a missing or empty folder or file fails (golden_dir.h).
#ifndef QCAL_TESTS_GOLDEN_FAMILY_RUNNER_H_
#define QCAL_TESTS_GOLDEN_FAMILY_RUNNER_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tests/golden/deviations.h"
#include "tests/golden/golden_values.h"

namespace qcal::golden {

struct FamilyRun {
  // The line's prefix: "golden", "golden quant".
  std::string suite;
  // "tensor_quant", read from `file` ("tensor_quant.json") in the golden folder.
  std::string family;
  std::string file;
  // The ordinary runner; std::nullopt for a case it does not run (counted with not_run_note).
  std::function<std::optional<CaseReport>(const Json&)> run;
  const std::vector<Deviation>* deviations = nullptr;
  std::string not_run_note;
};

// Records a gtest failure for every failing case (and none run at all), prints the line.
// `repo_root` resolves a relative QCAL_GOLDEN_DIR.
void RunFamily(const FamilyRun& family, const std::string& repo_root);

}  // namespace qcal::golden

#endif  // QCAL_TESTS_GOLDEN_FAMILY_RUNNER_H_
