// The golden cases where qcal differs from the reference on purpose (../shared/DESIGN.md: where
// the reference crashes, lets NaN poison amax, or accepts meaningless input, qcal does better).
// Every such case is listed in deviations.cc, once, with its reason and a check of what qcal
// does instead; the family runners never see these cases.
#ifndef QCAL_TESTS_GOLDEN_DEVIATIONS_H_
#define QCAL_TESTS_GOLDEN_DEVIATIONS_H_

#include <string_view>
#include <vector>

#include "tests/golden/golden_values.h"

namespace qcal::golden {

struct Deviation {
  std::string_view family;  // "histogram_calibrator", "max_calibrator", ...
  std::string_view name;    // the golden case
  std::string_view reason;
  // Asserts qcal's documented behaviour on the case (real values, not the reference's).
  CaseReport (*check)(const Json& golden_case);
};

const std::vector<Deviation>& Deviations();
// nullptr when the case is expected to match the reference.
const Deviation* FindDeviation(std::string_view family, std::string_view name);

}  // namespace qcal::golden

#endif  // QCAL_TESTS_GOLDEN_DEVIATIONS_H_
