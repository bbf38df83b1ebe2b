// The quant/ golden suite: every case of the five golden families (../shared/golden/README.md)
// run through quant/'s public API (tensor_quant, fake_tensor_quant, MaxCalibrator,
// HistogramCalibrator, TensorQuantizer, QuantDescriptorFromJson) instead of kernels/. One
// runner per family; the cases where qcal differs on purpose are in quant_deviations.cc.
#ifndef QCAL_TESTS_GOLDEN_QUANT_QUANT_GOLDEN_H_
#define QCAL_TESTS_GOLDEN_QUANT_QUANT_GOLDEN_H_

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "quant/calibrator.h"
#include "quant/errors.h"
#include "quant/histogram_calibrator.h"
#include "tests/golden/deviations.h"
#include "tests/golden/golden_values.h"

namespace qcal::golden_quant {

using golden::CaseReport;
using golden::Json;

// --- runners ------------------------------------------------------------------------------
CaseReport RunTensorQuantCase(const Json& golden_case);
CaseReport RunSteBackwardCase(const Json& golden_case);
CaseReport RunMaxCalibratorCase(const Json& golden_case);
CaseReport RunHistogramCase(const Json& golden_case);
CaseReport RunTensorQuantizerCase(const Json& golden_case);

// Deviation checks that need TensorQuantizer (tensor_quantizer_cases.cc).
CaseReport NarrowRangeExport(const Json& golden_case);
CaseReport DynamicAxisOutOfRange(const Json& golden_case);
CaseReport DescriptorNumBitsZero(const Json& golden_case);

// The deliberate deviations of this suite: every kernel deviation (tests/golden/deviations.cc,
// whose reasons are reused) checked through quant/, plus those only quant/ has.
const std::vector<golden::Deviation>& QuantDeviations();

// --- pieces the runners and deviation checks share ------------------------------------------
// A golden tensor ({shape, data}) as a CPU float32 tensor.
at::Tensor ToTorch(const Json& tensor);
std::vector<float> Floats(const at::Tensor& t);
// Shape and values equal (SameFloat: NaN == NaN; sign of zero when asked).
void ExpectTensor(CaseReport& report, const std::string& what, const Json& expected,
                  const at::Tensor& actual, bool sign_of_zero);
// Each value within `ulps` of the expected one (shape equal).
void ExpectTensorUlps(CaseReport& report, const std::string& what, const Json& expected,
                      const at::Tensor& actual, int64_t ulps);
// Runs `f`; the status of what it threw (quant/errors.h mapping).
template <typename F>
absl::Status Catch(F&& f) {
  return quant::CatchAsStatus(std::forward<F>(f));
}
// compute_amax's arguments from a golden entry's method and kwargs.
quant::CalibAmaxArgs AmaxArgs(const std::string& method, const Json& kwargs);
// A histogram calibrator's options from a case's params.
quant::HistogramCalibrator::Options HistogramOptions(const Json& params);
// Checks calib_hist (exact) and calib_bin_edges (2 ulp) against `expected`.
void CheckHistogramState(CaseReport& report, const Json& expected,
                         const quant::HistogramCalibrator& calib);
// Checks one compute_amax entry of histogram_calibrator.json on `calib`.
void CheckAmaxEntry(CaseReport& report, quant::HistogramCalibrator& calib, const Json& entry,
                    const std::string& what);

}  // namespace qcal::golden_quant

#endif  // QCAL_TESTS_GOLDEN_QUANT_QUANT_GOLDEN_H_
