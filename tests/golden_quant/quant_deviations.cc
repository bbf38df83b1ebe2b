// The one list of golden cases where quant/ differs from pytorch-quantization on purpose. quant/
// runs on kernels/, so every kernel deviation (tests/golden/deviations.cc, whose reasons are
// reused) is one here too, checked through quant/'s API; the rest concern only quant/.
#include <ATen/ops/tensor.h>

#include <cmath>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "quant/max_calibrator.h"
#include "quant/tensor_quant.h"
#include "tests/golden_quant/quant_golden.h"

namespace qcal::golden_quant {
namespace {

using golden::Deviation;

const Json kValueError = {{"type", "ValueError"}, {"message", "refused by qcal"}};

void ExpectEq(CaseReport& report, const std::string& what, double actual, double expected) {
  if (!(actual == expected)) {
    report.Fail(absl::StrCat(what, " = ", actual, ", expected ", expected));
  }
}

std::vector<at::Tensor> Batches(const Json& c) {
  std::vector<at::Tensor> batches;
  for (const Json& b : c.at("batches")) batches.push_back(ToTorch(b));
  return batches;
}

// Collects every batch, expecting success; returns the calibrator's non-finite count after each.
template <typename Calibrator>
std::vector<int64_t> CollectAll(CaseReport& report, Calibrator& calib, const Json& c) {
  std::vector<int64_t> nonfinite;
  const std::vector<at::Tensor> batches = Batches(c);
  for (size_t b = 0; b < batches.size(); ++b) {
    golden::ExpectOk(report, absl::StrCat("collect batch ", b),
                     Catch([&] { calib.collect(batches[b]); }));
    nonfinite.push_back(calib.nonfinite());
  }
  return nonfinite;
}

// --- tensor_quant, ste_backward -------------------------------------------------------------

struct Params {
  int num_bits;
  bool is_unsigned;
  bool narrow_range;
};

Params ParamsOf(const Json& c) {
  const Json& p = c.at("params");
  return {p.at("num_bits").get<int>(), p.at("unsigned").get<bool>(),
          p.at("narrow_range").get<bool>()};
}

CaseReport NumBitsRefused(const Json& c) {
  CaseReport report;
  const Params p = ParamsOf(c);
  const at::Tensor x = ToTorch(c.at("input"));
  const at::Tensor amax = ToTorch(c.at("amax"));
  golden::ExpectMappedError(
      report, "tensor_quant", kValueError,
      Catch([&] { quant::tensor_quant(x, amax, p.num_bits, p.is_unsigned, p.narrow_range); }));
  golden::ExpectMappedError(
      report, "fake_tensor_quant", kValueError,
      Catch([&] { quant::fake_tensor_quant(x, amax, p.num_bits, p.is_unsigned, p.narrow_range); }));
  return report;
}

CaseReport EmptyInputUnsigned(const Json& c) {
  CaseReport report;
  const Params p = ParamsOf(c);
  const at::Tensor x = ToTorch(c.at("input"));    // shape [0]
  const at::Tensor amax = ToTorch(c.at("amax"));  // 1.0
  at::Tensor q, scale, fake;
  golden::ExpectOk(report, "tensor_quant", Catch([&] {
                     std::tie(q, scale) =
                         quant::tensor_quant(x, amax, p.num_bits, p.is_unsigned, p.narrow_range);
                   }));
  golden::ExpectOk(report, "fake_tensor_quant", Catch([&] {
                     fake = quant::fake_tensor_quant(x, amax, p.num_bits, p.is_unsigned,
                                                     p.narrow_range);
                   }));
  const Json empty = {{"shape", {0}}, {"data", Json::array()}};
  if (q.defined()) {
    ExpectTensor(report, "quantized", empty, q, false);
    ExpectTensor(report, "scale", Json{{"shape", Json::array()}, {"data", {255.0}}}, scale, true);
  }
  if (fake.defined()) ExpectTensor(report, "fake", empty, fake, false);
  return report;
}

CaseReport SteNumBitsZero(const Json& c) {
  CaseReport report = NumBitsRefused(c);
  // The gradient does not depend on num_bits: with 8 bits it is the reference's.
  const at::Tensor x = ToTorch(c.at("input")).requires_grad_(true);
  quant::fake_tensor_quant(x, ToTorch(c.at("amax"))).backward(ToTorch(c.at("grad_output")));
  ExpectTensor(report, "grad_input", c.at("expected").at("grad_input"), x.grad(), false);
  return report;
}

// --- max_calibrator -------------------------------------------------------------------------

quant::MaxCalibrator MaxFor(const Json& c) {
  const Json& p = c.at("params");
  const Json& axis = p.at("axis");
  return quant::MaxCalibrator(
      {.num_bits = p.at("num_bits").get<int>(),
       .axis = axis.is_null() ? quant::QuantAxis() : quant::QuantAxis(axis.get<int>()),
       .is_unsigned = p.at("unsigned").get<bool>(),
       .track_amax = p.at("track_amax").get<bool>()});
}

// amax (values and shape) and the running non-finite count after each batch.
CaseReport MaxFiniteOnly(const Json& c, const Json& amax, const std::vector<int64_t>& nonfinite,
                         const std::vector<float>& amaxs = {}) {
  CaseReport report;
  quant::MaxCalibrator calib = MaxFor(c);
  const std::vector<int64_t> seen = CollectAll(report, calib, c);
  if (seen != nonfinite) report.Fail("non-finite counts differ");
  const std::optional<at::Tensor> got = calib.compute_amax();
  if (!got.has_value()) {
    report.Fail("no amax");
  } else {
    ExpectTensor(report, "amax", amax, *got, false);
  }
  for (size_t b = 0; b < amaxs.size() && b < calib.amaxs().size(); ++b) {
    ExpectEq(report, absl::StrCat("amaxs[", b, "]"), calib.amaxs()[b].item<float>(), amaxs[b]);
  }
  return report;
}

const Json kScalar3 = {{"shape", Json::array()}, {"data", {3.0}}};

CaseReport NanInBatchSticky(const Json& c) {  // [1, 2], [nan, 0.5], [3, 1]
  return MaxFiniteOnly(c, kScalar3, {0, 1, 1}, {2.0f, 0.5f, 3.0f});
}
CaseReport NanFirstBatchPerChannel(const Json& c) {  // axis 1: [[1, nan], [2, .5]], [[3, 1], ..]
  return MaxFiniteOnly(c, Json{{"shape", {1, 2}}, {"data", {3.0, 1.0}}}, {1, 1});
}
CaseReport InfInBatch(const Json& c) {  // [1, -inf], [2]
  return MaxFiniteOnly(c, Json{{"shape", Json::array()}, {"data", {2.0}}}, {1, 1});
}
CaseReport InfInBatchB(const Json& c) {  // [inf, 1, 3]
  return MaxFiniteOnly(c, kScalar3, {1}, {3.0f});
}

CaseReport AxisOutOfRange(const Json& c) {
  CaseReport report;
  quant::MaxCalibrator calib = MaxFor(c);
  golden::ExpectMappedError(report, "collect", kValueError,
                            Catch([&] { calib.collect(ToTorch(c.at("batches")[0])); }));
  if (calib.compute_amax().has_value()) report.Fail("a refused batch changed the state");
  return report;
}

// --- histogram_calibrator -------------------------------------------------------------------

// Bins holding `expected` (bin -> count); every other bin empty.
void ExpectBins(CaseReport& report, const quant::HistogramCalibrator& calib, int64_t num_bins,
                const std::map<int64_t, int64_t>& expected) {
  const std::optional<at::Tensor> hist = calib.calib_hist();
  if (!hist.has_value() || hist->size(0) != num_bins) {
    report.Fail(absl::StrCat("expected ", num_bins, " bins"));
    return;
  }
  for (int64_t b = 0; b < num_bins; ++b) {
    const auto it = expected.find(b);
    const int64_t want = it == expected.end() ? 0 : it->second;
    if ((*hist)[b].item<int64_t>() != want) {
      report.Fail(
          absl::StrCat("bin ", b, " holds ", (*hist)[b].item<int64_t>(), ", expected ", want));
      return;
    }
  }
}

// qcal on the case equals the reference's calibrator fed only the finite values: the same
// histogram and the same amax for every compute_amax entry.
void ExpectSameAsFiniteOnly(CaseReport& report, const Json& c, quant::HistogramCalibrator& calib) {
  quant::HistogramCalibrator finite_only(HistogramOptions(c.at("params")));
  for (const at::Tensor& batch : Batches(c)) {
    const at::Tensor finite = batch.masked_select(batch.isfinite());
    if (finite.numel() > 0) finite_only.collect(finite);
  }
  const auto same = [](const std::optional<at::Tensor>& a, const std::optional<at::Tensor>& b) {
    return a.has_value() == b.has_value() && (!a.has_value() || Floats(*a) == Floats(*b));
  };
  if (!same(calib.calib_hist(), finite_only.calib_hist()) ||
      !same(calib.calib_bin_edges(), finite_only.calib_bin_edges())) {
    report.Fail("histogram differs from the one of the finite values alone");
  }
  for (const Json& entry : c.at("expected").at("compute_amax")) {
    const quant::CalibAmaxArgs args =
        AmaxArgs(entry.at("method").get<std::string>(), entry.at("kwargs"));
    std::optional<at::Tensor> got, want;
    const absl::Status a = Catch([&] { got = calib.compute_amax(args); });
    const absl::Status b = Catch([&] { want = finite_only.compute_amax(args); });
    if (a.code() != b.code() || !same(got, want)) {
      report.Fail(absl::StrCat(entry.dump(), ": differs from the finite values alone"));
    }
  }
}

CaseReport AllZero(const Json& c) {
  CaseReport report;
  quant::HistogramCalibrator calib(HistogramOptions(c.at("params")));
  CollectAll(report, calib, c);
  // The 100 zeros are held until a range exists; every method's amax is 0.
  if (calib.calib_hist().has_value()) report.Fail("bins exist for an all-zero batch");
  ExpectEq(report, "pending zeros", calib.histogram().pending_zeros(), 100);
  if (calib.str() != "HistogramCalibrator(calib_bin_edges=None)") report.Fail(calib.str());
  for (const Json& entry : c.at("expected").at("compute_amax")) {
    const auto amax =
        calib.compute_amax(AmaxArgs(entry.at("method").get<std::string>(), entry.at("kwargs")));
    if (!amax.has_value() || amax->item<float>() != 0.0f) {
      report.Fail(absl::StrCat(entry.dump(), ": amax is not 0"));
    }
  }
  return report;
}

CaseReport AllZeroThenData(const Json& c) {
  CaseReport report;
  quant::HistogramCalibrator calib(HistogramOptions(c.at("params")));
  CollectAll(report, calib, c);  // [0 x 10], then [1, 2]
  // The held zeros land in bin 0 of the range [0, 2] the second batch opens.
  ExpectBins(report, calib, 2048, {{0, 10}, {1024, 1}, {2047, 1}});
  const std::vector<float> edges = Floats(*calib.calib_bin_edges());
  ExpectEq(report, "edges[1]", edges[1], 2.0 / 2048);
  ExpectEq(report, "last edge", edges.back(), 2.0);
  // cdf: 10/12 at bin 0, 11/12 up to bin 2047, then 1.
  ExpectEq(report, "percentile 50",
           calib.compute_amax({.method = "percentile", .percentile = 50.0})->item<float>(), 0.0);
  ExpectEq(report, "percentile 99.9",
           calib.compute_amax({.method = "percentile", .percentile = 99.9})->item<float>(),
           2047.0 / 1024);
  ExpectSameAsFiniteOnly(report, c, calib);
  return report;
}

CaseReport SkipZerosAllZero(const Json& c) {
  CaseReport report;
  quant::HistogramCalibrator calib(HistogramOptions(c.at("params")));
  CollectAll(report, calib, c);
  // Nothing is left to bin, and that is not an error; there is still nothing to search.
  for (const Json& entry : c.at("expected").at("compute_amax")) {
    if (calib.compute_amax(AmaxArgs(entry.at("method").get<std::string>(), entry.at("kwargs")))
            .has_value()) {
      report.Fail(absl::StrCat(entry.dump(), ": an amax without data"));
    }
  }
  return report;
}

CaseReport NanFirstBatch(const Json& c) {
  CaseReport report;
  quant::HistogramCalibrator calib(HistogramOptions(c.at("params")));
  const auto nonfinite = CollectAll(report, calib, c);  // [1, nan, 2]
  ExpectEq(report, "nonfinite", nonfinite.back(), 1);
  ExpectBins(report, calib, 2048, {{1024, 1}, {2047, 1}});
  ExpectSameAsFiniteOnly(report, c, calib);
  return report;
}

CaseReport NanLaterBatch(const Json& c) {
  CaseReport report;
  quant::HistogramCalibrator calib(HistogramOptions(c.at("params")));
  const auto nonfinite = CollectAll(report, calib, c);  // [1, 2, 0.5], [1.5, nan, nan]
  ExpectEq(report, "nonfinite", nonfinite.back(), 2);
  ExpectBins(report, calib, 2048, {{512, 1}, {1024, 1}, {1536, 1}, {2047, 1}});
  // The reference's histogram is qcal's plus its two NaNs counted in bin 0.
  Json expected = c.at("expected");
  expected["calib_hist"][0] = expected["calib_hist"][0].get<int64_t>() - 2;
  CheckHistogramState(report, expected, calib);
  ExpectSameAsFiniteOnly(report, c, calib);
  return report;
}

CaseReport InfFirstBatch(const Json& c) {
  CaseReport report;
  quant::HistogramCalibrator calib(HistogramOptions(c.at("params")));
  const auto nonfinite = CollectAll(report, calib, c);  // [1, +-inf]
  ExpectEq(report, "nonfinite", nonfinite.back(), 1);
  ExpectBins(report, calib, 2048, {{2047, 1}});
  ExpectSameAsFiniteOnly(report, c, calib);
  return report;
}

CaseReport InfLaterBatch(const Json& c) {
  CaseReport report;
  quant::HistogramCalibrator calib(HistogramOptions(c.at("params")));
  const auto nonfinite = CollectAll(report, calib, c);  // [1, 2], [inf]
  ExpectEq(report, "nonfinite", nonfinite.back(), 1);
  // The reference failed on the second batch and kept the first; so does qcal, in effect.
  const Json& expected = c.at("expected");
  CheckHistogramState(report, expected, calib);
  const Json& entries = expected.at("compute_amax");
  for (size_t k = 0; k < entries.size(); ++k) {
    CheckAmaxEntry(report, calib, entries[k], absl::StrCat("compute_amax[", k, "]"));
  }
  return report;
}

// The ordinary runner with the entries of `method` (and `kwargs`, when given) refused.
CaseReport RefusedEntries(const Json& c, const std::string& method, const Json& kwargs) {
  Json patched = c;
  int refused = 0;
  for (Json& entry : patched["expected"]["compute_amax"]) {
    if (entry.at("method") == method && (kwargs.is_null() || entry.at("kwargs") == kwargs)) {
      entry = {{"method", method}, {"kwargs", entry.at("kwargs")}, {"error", kValueError}};
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

CaseReport NumpyCollection(const Json& c) {
  CaseReport report;
  golden::ExpectMappedError(
      report, "constructor", Json{{"type", "NotImplementedError"}, {"message", ""}},
      Catch([&] { quant::HistogramCalibrator calib(HistogramOptions(c.at("params"))); }));
  return report;
}

using Check = CaseReport (*)(const Json&);

// quant/'s check of each kernel deviation, by case name.
const std::map<std::string, Check>& KernelDeviationChecks() {
  static const std::map<std::string, Check> checks = {
      {"num_bits_0_signed", NumBitsRefused},
      {"num_bits_1_signed", NumBitsRefused},
      {"empty_input_unsigned_v0", EmptyInputUnsigned},
      {"fake_ste_num_bits_0", SteNumBitsZero},
      {"nan_in_batch_sticky", NanInBatchSticky},
      {"nan_first_batch_per_channel", NanFirstBatchPerChannel},
      {"inf_in_batch", InfInBatch},
      {"inf_in_batch_b", InfInBatchB},
      {"axis_out_of_range_positive", AxisOutOfRange},
      {"axis_out_of_range_negative", AxisOutOfRange},
      {"all_zero", AllZero},
      {"all_zero_then_data", AllZeroThenData},
      {"skip_zeros_all_zero", SkipZerosAllZero},
      {"nan_first_batch", NanFirstBatch},
      {"nan_later_batch", NanLaterBatch},
      {"inf_first_batch", InfFirstBatch},
      {"neg_inf_first_batch", InfFirstBatch},
      {"inf_later_batch", InfLaterBatch},
      {"gaussian_num_bits_0", NumBitsZeroMse},
      {"bad_method_and_percentile", PercentileZero},
  };
  return checks;
}

CaseReport MissingCheck(const Json& c) {
  CaseReport report;
  report.Fail(absl::StrCat("kernel deviation ", c.at("name").get<std::string>(),
                           " has no quant/ check in quant_deviations.cc"));
  return report;
}

}  // namespace

const std::vector<Deviation>& QuantDeviations() {
  static const std::vector<Deviation> deviations = [] {
    std::vector<Deviation> list;
    for (const Deviation& d : golden::Deviations()) {
      const auto it = KernelDeviationChecks().find(std::string(d.name));
      list.push_back({d.family, d.name, d.reason,
                      it == KernelDeviationChecks().end() ? MissingCheck : it->second});
    }
    list.push_back({"histogram_calibrator", "numpy_path_gaussian_v0",
                    "torch_hist=false (numpy's collection, optional in the golden README) is "
                    "refused with NotImplementedError; qcal collects as torch.histc does (the "
                    "kernel suite checks the searches on this case's recorded histogram)",
                    NumpyCollection});
    list.push_back({"tensor_quantizer", "axis_out_of_range_dynamic",
                    "an axis beyond the input's rank is refused; the reference silently reduces "
                    "every axis to a per-tensor amax",
                    DynamicAxisOutOfRange});
    list.push_back({"tensor_quantizer", "num_bits_0_fake",
                    "QuantDescriptor refuses num_bits 0; the reference accepts it and quantizes "
                    "to a degenerate grid",
                    DescriptorNumBitsZero});
    list.push_back({"tensor_quantizer", "descriptor_num_bits_0",
                    "QuantDescriptor refuses num_bits 0; the reference only logs an error",
                    DescriptorNumBitsZero});
    for (const char* name : {"narrow_fake_static_v0", "narrow_fake_static_v1"}) {
      list.push_back({"tensor_quantizer", name,
                      "qcal's QDQ export has no narrow-range rule (the server's quantizer spec "
                      "carries no narrow_range): it writes the full-range int8 parameters "
                      "(scale amax/127, zero point 0) where the reference refuses the export",
                      NarrowRangeExport});
    }
    return list;
  }();
  return deviations;
}

}  // namespace qcal::golden_quant
