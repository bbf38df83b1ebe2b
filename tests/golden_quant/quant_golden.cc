#include "tests/golden_quant/quant_golden.h"

#include <ATen/ops/tensor.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qcal::golden_quant {

using golden::GoldenTensor;
using golden::ToFloat;
using golden::ToTensor;

namespace {

constexpr int64_t kEdgeUlps = 2;  // calib_bin_edges and histogram amax (README)

bool ListContains(const Json& list, int64_t value) {
  return std::any_of(list.begin(), list.end(),
                     [&](const Json& v) { return v.get<int64_t>() == value; });
}

}  // namespace

at::Tensor ToTorch(const Json& tensor) {
  const GoldenTensor t = ToTensor(tensor);
  return at::tensor(t.data, at::kFloat).reshape(t.shape);
}

std::vector<float> Floats(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

void ExpectTensor(CaseReport& report, const std::string& what, const Json& expected,
                  const at::Tensor& actual, bool sign_of_zero) {
  const GoldenTensor want = ToTensor(expected);
  const std::vector<int64_t> shape(actual.sizes().begin(), actual.sizes().end());
  if (want.shape != shape) {
    report.Fail(absl::StrCat(what, " shape [", absl::StrJoin(shape, ","), "], expected [",
                             absl::StrJoin(want.shape, ","), "]"));
    return;
  }
  golden::ExpectSameFloats(report, what, want.data, Floats(actual), sign_of_zero);
}

void ExpectTensorUlps(CaseReport& report, const std::string& what, const Json& expected,
                      const at::Tensor& actual, int64_t ulps) {
  const GoldenTensor want = ToTensor(expected);
  const std::vector<int64_t> shape(actual.sizes().begin(), actual.sizes().end());
  const std::vector<float> got = Floats(actual);
  if (want.shape != shape) {
    report.Fail(absl::StrCat(what, " shape [", absl::StrJoin(shape, ","), "], expected [",
                             absl::StrJoin(want.shape, ","), "]"));
    return;
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (!golden::SameFloat(got[i], want.data[i]) &&
        golden::UlpDistance(got[i], want.data[i]) > ulps) {
      report.Fail(absl::StrCat(what, "[", i, "] = ", got[i], ", expected ", want.data[i]));
      return;
    }
  }
}

quant::CalibAmaxArgs AmaxArgs(const std::string& method, const Json& kwargs) {
  quant::CalibAmaxArgs args;
  args.method = method;
  if (kwargs.contains("start_bin")) args.start_bin = kwargs["start_bin"].get<int>();
  if (kwargs.contains("stride")) args.stride = kwargs["stride"].get<int>();
  if (kwargs.contains("percentile")) args.percentile = golden::ToDouble(kwargs["percentile"]);
  return args;
}

quant::HistogramCalibrator::Options HistogramOptions(const Json& params) {
  const Json& axis = params.at("axis");
  return quant::HistogramCalibrator::Options(
      {.num_bits = params.at("num_bits").get<int>(),
       .axis = axis.is_null() ? quant::QuantAxis() : quant::QuantAxis(axis.get<int>()),
       .is_unsigned = params.at("unsigned").get<bool>(),
       .num_bins = params.at("num_bins").get<int>(),
       .skip_zeros = params.at("skip_zeros").get<bool>(),
       .torch_hist = params.at("torch_hist").get<bool>()});
}

void CheckHistogramState(CaseReport& report, const Json& expected,
                         const quant::HistogramCalibrator& calib) {
  const std::optional<at::Tensor> hist = calib.calib_hist();
  const std::optional<at::Tensor> edges = calib.calib_bin_edges();
  if (expected.at("calib_hist").is_null()) {
    if (hist.has_value()) report.Fail("reference has no histogram, qcal has bins");
    return;
  }
  if (!hist.has_value() || !edges.has_value()) {
    report.Fail("qcal has no histogram");
    return;
  }
  const auto want = expected.at("calib_hist").get<std::vector<int64_t>>();
  const at::Tensor h = hist->contiguous();
  const std::vector<int64_t> got(h.data_ptr<int64_t>(), h.data_ptr<int64_t>() + h.numel());
  if (got != want) {
    size_t k = 0;
    while (k < want.size() && k < got.size() && want[k] == got[k]) ++k;
    report.Fail(absl::StrCat("calib_hist differs (", got.size(), " bins, expected ", want.size(),
                             ") first at bin ", k));
  }
  ExpectTensorUlps(report, "calib_bin_edges",
                   Json{{"shape", {expected.at("calib_bin_edges").size()}},
                        {"data", expected.at("calib_bin_edges")}},
                   *edges, kEdgeUlps);
}

void CheckAmaxEntry(CaseReport& report, quant::HistogramCalibrator& calib, const Json& entry,
                    const std::string& what) {
  const std::string method = entry.at("method").get<std::string>();
  std::optional<at::Tensor> amax;
  const absl::Status status =
      Catch([&] { amax = calib.compute_amax(AmaxArgs(method, entry.at("kwargs"))); });
  if (entry.contains("error")) {
    golden::ExpectMappedError(report, what, entry["error"], status);
    return;
  }
  if (!status.ok()) {
    report.Fail(absl::StrCat(what, ": ", status.ToString()));
    return;
  }
  if (entry.at("amax").is_null()) {
    if (amax.has_value()) report.Fail(absl::StrCat(what, ": reference returned None"));
    return;
  }
  if (!amax.has_value()) {
    report.Fail(absl::StrCat(what, ": qcal returned no amax"));
    return;
  }
  if (amax->dim() != 0) report.Fail(absl::StrCat(what, ": amax is not 0-d"));
  const float got = amax->item<float>();
  const float want = ToFloat(entry.at("amax"));
  if (golden::UlpDistance(got, want) <= kEdgeUlps) return;
  // A listed tie: qcal's amax must be the edge (or bin center) at another of the tie indices
  // (at the reference's own index it must be the reference's amax, checked above).
  if (entry.contains("tie_indices") && calib.calib_bin_edges().has_value()) {
    const std::vector<float> edges = Floats(*calib.calib_bin_edges());
    const bool centers = entry.value("index_space", "edges") == "centers";
    const int64_t reference_index = entry.value("index", int64_t{-1});
    for (size_t k = 0; k + (centers ? 1 : 0) < edges.size(); ++k) {
      const float at_k = centers ? (edges[k] + edges[k + 1]) / 2.0f : edges[k];
      const auto index = static_cast<int64_t>(k);
      if (at_k == got && index != reference_index && ListContains(entry["tie_indices"], index)) {
        return;
      }
    }
  }
  report.Fail(absl::StrCat(what, ": amax ", got, ", expected ", want,
                           entry.contains("tie_indices")
                               ? absl::StrCat(" or a tie in ", entry["tie_indices"].dump())
                               : ""));
}

}  // namespace qcal::golden_quant
