// One runner per golden family: each replays a case through qcal's kernels and reports every
// difference from the reference under the golden README's tolerances. Cases where qcal differs
// on purpose are not run here but by their entry in deviations.h.
#ifndef QCAL_TESTS_GOLDEN_GOLDEN_FAMILIES_H_
#define QCAL_TESTS_GOLDEN_GOLDEN_FAMILIES_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "kernels/histogram.h"
#include "tests/golden/golden_values.h"

namespace qcal::golden {

CaseReport RunTensorQuantCase(const Json& golden_case);
CaseReport RunMaxCalibratorCase(const Json& golden_case);
CaseReport RunHistogramCase(const Json& golden_case);
// nullopt for the learn_amax cases (TensorQuantizer's learnable range belongs to quant/).
std::optional<CaseReport> RunSteBackwardCase(const Json& golden_case);

// Pieces the deviation checks reuse.
// Compares calib_hist (exact) and calib_bin_edges (2 ulp) of `expected` with `hist`.
void CheckHistogramState(CaseReport& report, const Json& expected, const kernels::Histogram& hist);
// Checks one expected compute_amax entry against qcal on `hist`.
void CheckComputeAmax(CaseReport& report, const kernels::Histogram& hist, const Json& params,
                      const Json& entry, const std::string& what);
// qcal's amax (method and kwargs of a compute_amax entry) on `hist`.
absl::StatusOr<float> HistogramAmaxFor(const kernels::Histogram& hist, const Json& params,
                                       const Json& entry);
// A histogram built from a case's params (num_bins, skip_zeros, axis).
kernels::Histogram::Options HistogramOptions(const Json& params);

}  // namespace qcal::golden

#endif  // QCAL_TESTS_GOLDEN_GOLDEN_FAMILIES_H_
