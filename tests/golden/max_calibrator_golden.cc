// max_calibrator.json: MaxCalibrator collect / compute_amax.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/max_calibrator.h"
#include "tests/golden/golden_families.h"

namespace qcal::golden {
namespace {

kernels::MaxCalibrator CalibratorFor(const Json& params) {
  const Json& axis = params.at("axis");
  if (axis.is_null()) return kernels::MaxCalibrator(std::nullopt);
  if (axis.is_array()) return kernels::MaxCalibrator(axis.get<std::vector<int>>());
  return kernels::MaxCalibrator(axis.get<int>());
}

std::vector<int64_t> WithoutOnes(const std::vector<int64_t>& shape) {
  std::vector<int64_t> out;
  std::copy_if(shape.begin(), shape.end(), std::back_inserter(out),
               [](int64_t d) { return d != 1; });
  return out;
}

// The reference's amax tensor keeps size-1 axes ([C,1,1,1]) or squeezes a single value to 0-d;
// qcal keeps the channel sizes: compare values and the non-1 sizes.
void ExpectAmax(CaseReport& report, const std::string& what, const Json& expected,
                const kernels::MaxCalibrator& calib) {
  if (expected.is_null()) {
    if (!calib.empty()) report.Fail(absl::StrCat(what, ": reference has no amax, qcal has one"));
    return;
  }
  const GoldenTensor want = ToTensor(expected);
  if (WithoutOnes(want.shape) != WithoutOnes(calib.channel_shape())) {
    report.Fail(absl::StrCat(what, ": channel shape [", absl::StrJoin(calib.channel_shape(), ","),
                             "], expected [", absl::StrJoin(want.shape, ","), "]"));
    return;
  }
  ExpectSameFloats(report, what, want.data, calib.amax());
}

}  // namespace

CaseReport RunMaxCalibratorCase(const Json& golden_case) {
  CaseReport report;
  const Json& params = golden_case.at("params");
  const Json& expected = golden_case.at("expected");
  const int error_at = expected.contains("error_at_batch") && !expected["error_at_batch"].is_null()
                           ? expected["error_at_batch"].get<int>()
                           : -1;
  kernels::MaxCalibrator calib = CalibratorFor(params);
  int accepted = 0;
  for (const Json& batch_json : golden_case.at("batches")) {
    const GoldenTensor batch = ToTensor(batch_json);
    const auto stats = calib.Collect(batch.data, batch.shape);
    const std::string what = absl::StrCat("batch ", accepted);
    if (accepted == error_at) {
      ExpectMappedError(report, what, expected.at("error"), stats.status());
      break;
    }
    ExpectOk(report, what, stats.status());
    ++accepted;
  }
  ExpectAmax(report, "amax", expected.at("amax"), calib);
  if (expected.contains("amaxs")) {
    // track_amax: each batch's own amax, from a calibrator that saw only that batch. The
    // reference's first entry is the calibrator's running amax itself (it appends the tensor
    // it keeps and later updates in place), so it reads as the final amax.
    const Json& amaxs = expected["amaxs"];
    if (static_cast<int>(amaxs.size()) != accepted) {
      report.Fail(absl::StrCat("amaxs has ", amaxs.size(), " entries for ", accepted, " batches"));
    }
    if (accepted > 0 && !amaxs.empty()) ExpectAmax(report, "amaxs[0]", amaxs[0], calib);
    for (int b = 1; b < std::min<int>(accepted, amaxs.size()); ++b) {
      kernels::MaxCalibrator single = CalibratorFor(params);
      const GoldenTensor batch = ToTensor(golden_case.at("batches")[b]);
      ExpectOk(report, absl::StrCat("amaxs batch ", b),
               single.Collect(batch.data, batch.shape).status());
      ExpectAmax(report, absl::StrCat("amaxs[", b, "]"), amaxs[b], single);
    }
  }
  return report;
}

}  // namespace qcal::golden
