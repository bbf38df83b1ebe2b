// The one list of golden cases where qcal deliberately differs from pytorch-quantization, each
// with the reason and a check of qcal's own values.
#include "tests/golden/deviations.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/fake_quant.h"
#include "kernels/histogram.h"
#include "kernels/max_calibrator.h"
#include "tests/golden/golden_families.h"

namespace qcal::golden {
namespace {

using kernels::Histogram;

std::vector<GoldenTensor> Batches(const Json& golden_case) {
  std::vector<GoldenTensor> batches;
  for (const Json& b : golden_case.at("batches")) batches.push_back(ToTensor(b));
  return batches;
}

void ExpectEq(CaseReport& report, const std::string& what, double actual, double expected) {
  if (!(actual == expected)) {
    report.Fail(absl::StrCat(what, " = ", actual, ", expected ", expected));
  }
}

void ExpectCode(CaseReport& report, const std::string& what, const absl::Status& status,
                absl::StatusCode code) {
  if (status.code() != code) {
    report.Fail(absl::StrCat(what, ": expected ", absl::StatusCodeToString(code), ", got ",
                             status.ToString()));
  }
}

// Histogram bins holding `expected` (bin -> count); every other bin must be empty.
void ExpectBins(CaseReport& report, const Histogram& h, size_t num_bins,
                const std::vector<std::pair<size_t, uint64_t>>& expected) {
  if (h.Counts().size() != num_bins) {
    report.Fail(absl::StrCat(h.Counts().size(), " bins, expected ", num_bins));
    return;
  }
  std::vector<uint64_t> want(num_bins, 0);
  for (const auto& [bin, count] : expected) want[bin] = count;
  for (size_t b = 0; b < num_bins; ++b) {
    if (h.Counts()[b] != want[b]) {
      report.Fail(absl::StrCat("bin ", b, " holds ", h.Counts()[b], ", expected ", want[b]));
      return;
    }
  }
}

// Collects every batch, expecting success; returns the non-finite count of each.
std::vector<int64_t> CollectAll(CaseReport& report, Histogram& h,
                                const std::vector<GoldenTensor>& batches) {
  std::vector<int64_t> nonfinite;
  for (size_t b = 0; b < batches.size(); ++b) {
    const auto stats = h.Collect(batches[b].data);
    ExpectOk(report, absl::StrCat("collect batch ", b), stats.status());
    nonfinite.push_back(stats.ok() ? stats->nonfinite : -1);
  }
  return nonfinite;
}

// qcal on the case equals the reference fed only the finite values (what "left out" means):
// same counts, edges and amax for every compute_amax entry.
void ExpectSameAsFiniteOnly(CaseReport& report, const Json& golden_case, const Histogram& h) {
  const Json& params = golden_case.at("params");
  Histogram finite_only(HistogramOptions(params));
  for (const GoldenTensor& batch : Batches(golden_case)) {
    std::vector<float> finite;
    for (const float v : batch.data) {
      if (std::isfinite(v)) finite.push_back(v);
    }
    if (!finite.empty())
      ExpectOk(report, "finite-only collect", finite_only.Collect(finite).status());
  }
  if (!std::equal(h.Counts().begin(), h.Counts().end(), finite_only.Counts().begin(),
                  finite_only.Counts().end()) ||
      !std::equal(h.Edges().begin(), h.Edges().end(), finite_only.Edges().begin(),
                  finite_only.Edges().end())) {
    report.Fail("histogram differs from the one of the finite values alone");
  }
  for (const Json& entry : golden_case.at("expected").at("compute_amax")) {
    const auto amax = HistogramAmaxFor(h, params, entry);
    const auto want = HistogramAmaxFor(finite_only, params, entry);
    if (!amax.ok() || !want.ok() || *amax != *want) {
      report.Fail(absl::StrCat(entry.dump(), ": amax ",
                               amax.ok() ? absl::StrCat(*amax) : amax.status().ToString(),
                               ", finite values alone give ",
                               want.ok() ? absl::StrCat(*want) : want.status().ToString()));
    }
  }
}

// qcal's amax for a compute_amax entry; NaN when it fails (a failure of its own is reported by
// the comparison that follows).
float AmaxOrNan(const Histogram& h, const Json& params, const Json& entry) {
  const auto amax = HistogramAmaxFor(h, params, entry);
  return amax.ok() ? *amax : std::nanf("");
}

Histogram NewHistogram(const Json& golden_case) {
  return Histogram(HistogramOptions(golden_case.at("params")));
}

// --- histogram_calibrator ---------------------------------------------------------------------

CaseReport AllZero(const Json& c) {
  CaseReport report;
  Histogram h = NewHistogram(c);
  const auto nonfinite = CollectAll(report, h, Batches(c));
  // The 100 zeros are held until a range exists; every method's amax is 0.
  if (!h.Counts().empty() || !h.Edges().empty()) report.Fail("bins exist for an all-zero batch");
  ExpectEq(report, "total", h.total(), 100);
  ExpectEq(report, "pending zeros", h.pending_zeros(), 100);
  ExpectEq(report, "abs_max", h.abs_max(), 0.0);
  ExpectEq(report, "nonfinite", nonfinite[0], 0);
  for (const Json& entry : c.at("expected").at("compute_amax")) {
    const auto amax = HistogramAmaxFor(h, c.at("params"), entry);
    if (!amax.ok() || *amax != 0.0f) report.Fail(absl::StrCat(entry.dump(), ": amax is not 0"));
  }
  return report;
}

CaseReport AllZeroThenData(const Json& c) {
  CaseReport report;
  Histogram h = NewHistogram(c);
  CollectAll(report, h, Batches(c));  // [0 x 10], then [1, 2]
  // The held zeros land in bin 0 of the range [0, 2] the second batch opens.
  ExpectBins(report, h, 2048, {{0, 10}, {1024, 1}, {2047, 1}});
  ExpectEq(report, "total", h.total(), 12);
  ExpectEq(report, "edges[1]", h.Edges()[1], 2.0 / 2048);
  ExpectEq(report, "last edge", h.Edges().back(), 2.0);
  const Json percentile_50 = {{"method", "percentile"}, {"kwargs", {{"percentile", 50.0}}}};
  const Json percentile_999 = {{"method", "percentile"}, {"kwargs", {{"percentile", 99.9}}}};
  // cdf: 10/12 at bin 0, 11/12 up to bin 2047, then 1.
  ExpectEq(report, "percentile 50", AmaxOrNan(h, c.at("params"), percentile_50), 0.0);
  ExpectEq(report, "percentile 99.9", AmaxOrNan(h, c.at("params"), percentile_999), 2047.0 / 1024);
  ExpectSameAsFiniteOnly(report, c, h);
  return report;
}

CaseReport SkipZerosAllZero(const Json& c) {
  CaseReport report;
  Histogram h = NewHistogram(c);
  CollectAll(report, h, Batches(c));
  // Nothing is left to bin, and that is not an error; there is still no data to search.
  ExpectEq(report, "total", h.total(), 0);
  if (h.empty()) report.Fail("the batch was not recorded as collected");
  for (const Json& entry : c.at("expected").at("compute_amax")) {
    ExpectCode(report, entry.dump(), HistogramAmaxFor(h, c.at("params"), entry).status(),
               absl::StatusCode::kFailedPrecondition);
  }
  return report;
}

CaseReport NanFirstBatch(const Json& c) {
  CaseReport report;
  Histogram h = NewHistogram(c);
  const auto nonfinite = CollectAll(report, h, Batches(c));  // [1, nan, 2]
  ExpectEq(report, "nonfinite", nonfinite[0], 1);
  ExpectBins(report, h, 2048, {{1024, 1}, {2047, 1}});
  ExpectEq(report, "total", h.total(), 2);
  ExpectEq(report, "abs_max", h.abs_max(), 2.0);
  ExpectSameAsFiniteOnly(report, c, h);
  return report;
}

CaseReport NanLaterBatch(const Json& c) {
  CaseReport report;
  Histogram h = NewHistogram(c);
  const auto nonfinite = CollectAll(report, h, Batches(c));  // [1, 2, 0.5], [1.5, nan, nan]
  ExpectEq(report, "nonfinite", nonfinite[1], 2);
  ExpectBins(report, h, 2048, {{512, 1}, {1024, 1}, {1536, 1}, {2047, 1}});
  ExpectEq(report, "total", h.total(), 4);
  // The reference's histogram is qcal's plus its two NaNs counted in bin 0.
  Json expected = c.at("expected");
  expected["calib_hist"][0] = expected["calib_hist"][0].get<uint64_t>() - 2;
  CheckHistogramState(report, expected, h);
  ExpectSameAsFiniteOnly(report, c, h);
  return report;
}

CaseReport InfFirstBatch(const Json& c) {
  CaseReport report;
  Histogram h = NewHistogram(c);
  const auto nonfinite = CollectAll(report, h, Batches(c));  // [1, +-inf]
  ExpectEq(report, "nonfinite", nonfinite[0], 1);
  ExpectBins(report, h, 2048, {{2047, 1}});
  ExpectEq(report, "abs_max", h.abs_max(), 1.0);
  ExpectSameAsFiniteOnly(report, c, h);
  return report;
}

CaseReport InfLaterBatch(const Json& c) {
  CaseReport report;
  Histogram h = NewHistogram(c);
  const auto nonfinite = CollectAll(report, h, Batches(c));  // [1, 2], [inf]
  ExpectEq(report, "nonfinite", nonfinite[1], 1);
  // The reference failed on the second batch and kept the first; qcal keeps the first too,
  // so the recorded histogram and every amax match the reference.
  const Json& expected = c.at("expected");
  CheckHistogramState(report, expected, h);
  const Json& entries = expected.at("compute_amax");
  for (size_t k = 0; k < entries.size(); ++k) {
    CheckComputeAmax(report, h, c.at("params"), entries[k], absl::StrCat("compute_amax[", k, "]"));
  }
  return report;
}

// Runs the ordinary comparison with the entries of `method`/`kwargs` expecting INVALID_ARGUMENT.
CaseReport RefusedEntries(const Json& c, const std::string& method, const Json& kwargs) {
  Json patched = c;
  int refused = 0;
  for (Json& entry : patched["expected"]["compute_amax"]) {
    if (entry.at("method") == method && (kwargs.is_null() || entry.at("kwargs") == kwargs)) {
      entry = {{"method", method},
               {"kwargs", entry.at("kwargs")},
               {"error", {{"type", "ValueError"}, {"message", "refused by qcal"}}}};
      ++refused;
    }
  }
  CaseReport report = RunHistogramCase(patched);
  if (refused == 0) report.Fail("no compute_amax entry to refuse");
  return report;
}

CaseReport NumBitsZeroMse(const Json& c) { return RefusedEntries(c, "mse", Json()); }

CaseReport PercentileZero(const Json& c) {
  return RefusedEntries(c, "percentile", Json{{"percentile", 0.0}});
}

// --- max_calibrator -------------------------------------------------------------------------

// Collects every batch and checks qcal's amax and each batch's non-finite count.
CaseReport MaxFiniteOnly(const Json& c, const std::vector<float>& amax,
                         const std::vector<int64_t>& nonfinite) {
  CaseReport report;
  const Json& axis = c.at("params").at("axis");
  kernels::MaxCalibrator calib(axis.is_null() ? std::nullopt : std::optional<int>(axis.get<int>()));
  const auto batches = Batches(c);
  for (size_t b = 0; b < batches.size(); ++b) {
    const auto stats = calib.Collect(batches[b].data, batches[b].shape);
    ExpectOk(report, absl::StrCat("batch ", b), stats.status());
    if (stats.ok())
      ExpectEq(report, absl::StrCat("nonfinite of batch ", b), stats->nonfinite, nonfinite[b]);
  }
  ExpectSameFloats(report, "amax", amax, calib.amax());
  return report;
}

CaseReport NanInBatchSticky(const Json& c) {
  return MaxFiniteOnly(c, {3.0f}, {0, 1, 0});  // [1, 2], [nan, 0.5], [3, 1]
}

CaseReport NanFirstBatchPerChannel(const Json& c) {
  // axis 1: [[1, nan], [2, 0.5]], [[3, 1], [0.1, 0.2]]
  return MaxFiniteOnly(c, {3.0f, 1.0f}, {1, 0});
}

CaseReport InfInBatch(const Json& c) { return MaxFiniteOnly(c, {2.0f}, {1, 0}); }  // [1, -inf], [2]

CaseReport InfInBatchB(const Json& c) { return MaxFiniteOnly(c, {3.0f}, {1}); }  // [inf, 1, 3]

CaseReport AxisOutOfRange(const Json& c) {
  CaseReport report;
  kernels::MaxCalibrator calib(c.at("params").at("axis").get<int>());
  const GoldenTensor batch = ToTensor(c.at("batches")[0]);
  const auto stats = calib.Collect(batch.data, batch.shape);
  ExpectCode(report, "collect", stats.status(), absl::StatusCode::kInvalidArgument);
  if (!calib.empty()) report.Fail("a refused batch changed the state");
  return report;
}

// --- tensor_quant, ste_backward ---------------------------------------------------------------

kernels::QuantParams ParamsOf(const Json& p) {
  return {p.at("num_bits").get<int>(), p.at("unsigned").get<bool>(),
          p.at("narrow_range").get<bool>()};
}

CaseReport NumBitsRefused(const Json& c) {
  CaseReport report;
  const GoldenTensor x = ToTensor(c.at("input"));
  const GoldenTensor amax = ToTensor(c.at("amax"));
  const kernels::QuantParams params = ParamsOf(c.at("params"));
  ExpectCode(report, "tensor_quant",
             kernels::TensorQuant({x.data, x.shape}, {amax.data, amax.shape}, params).status(),
             absl::StatusCode::kInvalidArgument);
  ExpectCode(report, "fake_tensor_quant",
             kernels::FakeTensorQuant({x.data, x.shape}, {amax.data, amax.shape}, params).status(),
             absl::StatusCode::kInvalidArgument);
  return report;
}

CaseReport EmptyInputUnsigned(const Json& c) {
  CaseReport report;
  const GoldenTensor x = ToTensor(c.at("input"));    // shape [0]
  const GoldenTensor amax = ToTensor(c.at("amax"));  // 1.0
  const kernels::QuantParams params = ParamsOf(c.at("params"));
  const auto quant = kernels::TensorQuant({x.data, x.shape}, {amax.data, amax.shape}, params);
  const auto fake = kernels::FakeTensorQuant({x.data, x.shape}, {amax.data, amax.shape}, params);
  ExpectOk(report, "tensor_quant", quant.status());
  ExpectOk(report, "fake_tensor_quant", fake.status());
  if (quant.ok()) {
    if (!quant->quantized.data.empty() || quant->quantized.shape != std::vector<int64_t>{0}) {
      report.Fail("quantized output is not an empty [0] tensor");
    }
    ExpectSameFloats(report, "scale", {255.0f}, quant->scale.data);
  }
  if (fake.ok() && (!fake->data.empty() || fake->shape != std::vector<int64_t>{0})) {
    report.Fail("fake-quantized output is not an empty [0] tensor");
  }
  return report;
}

CaseReport SteNumBitsZero(const Json& c) {
  CaseReport report = NumBitsRefused(c);
  // The gradient does not depend on num_bits: it still passes where |x| <= amax.
  const GoldenTensor x = ToTensor(c.at("input"));
  const GoldenTensor amax = ToTensor(c.at("amax"));
  const GoldenTensor grad_output = ToTensor(c.at("grad_output"));
  const auto grad = kernels::StraightThroughGrad({x.data, x.shape}, {amax.data, amax.shape},
                                                 {grad_output.data, grad_output.shape});
  ExpectOk(report, "backward", grad.status());
  if (grad.ok()) {
    ExpectSameFloats(report, "grad_input", ToTensor(c.at("expected").at("grad_input")).data,
                     grad->data, /*sign_of_zero=*/false);
  }
  return report;
}

}  // namespace

const std::vector<Deviation>& Deviations() {
  static const std::vector<Deviation> deviations = {
      {"histogram_calibrator", "all_zero",
       "a first batch of only zeros is held as pending zeros (no bins, amax 0) instead of a "
       "degenerate [0, 0] range",
       AllZero},
      {"histogram_calibrator", "all_zero_then_data",
       "held zeros are re-binned when the first non-zero range arrives; the reference fails",
       AllZeroThenData},
      {"histogram_calibrator", "skip_zeros_all_zero",
       "a batch with nothing left after skip_zeros is accepted; the reference fails in max()",
       SkipZerosAllZero},
      {"histogram_calibrator", "nan_first_batch",
       "NaN is counted and left out; the reference refuses the batch", NanFirstBatch},
      {"histogram_calibrator", "nan_later_batch",
       "NaN is counted and left out; the reference counts it in bin 0", NanLaterBatch},
      {"histogram_calibrator", "inf_first_batch",
       "+inf is counted and left out; the reference refuses the batch", InfFirstBatch},
      {"histogram_calibrator", "neg_inf_first_batch",
       "-inf is counted and left out; the reference refuses the batch", InfFirstBatch},
      {"histogram_calibrator", "inf_later_batch",
       "+inf is counted and left out; the reference fails growing the range", InfLaterBatch},
      {"histogram_calibrator", "gaussian_num_bits_0",
       "num_bits 0 is refused by mse too; the reference returns a degenerate amax", NumBitsZeroMse},
      {"histogram_calibrator", "bad_method_and_percentile",
       "percentile 0 is refused (an amax of 0 means a zero scale); the reference returns edge 0",
       PercentileZero},
      {"max_calibrator", "nan_in_batch_sticky",
       "NaN is counted and left out; the reference's amax becomes NaN for good", NanInBatchSticky},
      {"max_calibrator", "nan_first_batch_per_channel",
       "NaN is counted and left out; the reference's channel amax becomes NaN",
       NanFirstBatchPerChannel},
      {"max_calibrator", "inf_in_batch",
       "-inf is counted and left out; the reference's amax becomes inf", InfInBatch},
      {"max_calibrator", "inf_in_batch_b",
       "+inf is counted and left out; the reference's amax becomes inf", InfInBatchB},
      {"max_calibrator", "axis_out_of_range_positive",
       "an axis beyond the rank is refused; the reference silently reduces every axis",
       AxisOutOfRange},
      {"max_calibrator", "axis_out_of_range_negative",
       "an axis beyond the rank is refused; the reference silently reduces every axis",
       AxisOutOfRange},
      {"tensor_quant", "num_bits_0_signed",
       "num_bits 0 is refused; the reference returns -0.5 levels and a negative scale",
       NumBitsRefused},
      {"tensor_quant", "num_bits_1_signed",
       "signed num_bits 1 (no positive level) is refused; the reference returns NaN",
       NumBitsRefused},
      {"tensor_quant", "empty_input_unsigned_v0",
       "an empty input gives an empty output, signed or not; the reference fails in min()",
       EmptyInputUnsigned},
      {"ste_backward", "fake_ste_num_bits_0",
       "num_bits 0 is refused in the forward pass; the gradient rule is unchanged", SteNumBitsZero},
  };
  return deviations;
}

const Deviation* FindDeviation(std::string_view family, std::string_view name) {
  for (const Deviation& d : Deviations()) {
    if (d.family == family && d.name == name) return &d;
  }
  return nullptr;
}

}  // namespace qcal::golden
