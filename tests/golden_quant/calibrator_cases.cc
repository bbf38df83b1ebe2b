// max_calibrator.json and histogram_calibrator.json through quant/'s MaxCalibrator and
// HistogramCalibrator.
#include <ATen/ops/tensor.h>

#include "absl/strings/str_cat.h"
#include "quant/max_calibrator.h"
#include "tests/golden_quant/quant_golden.h"

namespace qcal::golden_quant {
namespace {

quant::MaxCalibrator NewMaxCalibrator(const Json& params) {
  const Json& axis = params.at("axis");
  quant::QuantAxis kept;
  if (axis.is_number_integer()) kept = quant::QuantAxis(axis.get<int>());
  if (axis.is_array()) kept = quant::QuantAxis::Tuple(axis.get<std::vector<int>>());
  return quant::MaxCalibrator({.num_bits = params.at("num_bits").get<int>(),
                               .axis = kept,
                               .is_unsigned = params.at("unsigned").get<bool>(),
                               .track_amax = params.at("track_amax").get<bool>()});
}

void ExpectAmax(CaseReport& report, const std::string& what, const Json& expected,
                const std::optional<at::Tensor>& amax) {
  if (expected.is_null()) {
    if (amax.has_value()) report.Fail(absl::StrCat(what, ": reference has no amax, qcal has one"));
    return;
  }
  if (!amax.has_value()) {
    report.Fail(absl::StrCat(what, ": qcal has no amax"));
    return;
  }
  // Exact, shape included ([C,1,1,1], or 0-d for one value, as the reference).
  ExpectTensor(report, what, expected, *amax, /*sign_of_zero=*/false);
}

void CheckAfterBatch(CaseReport& report, size_t batch, const Json& after,
                     const quant::HistogramCalibrator& calib) {
  const std::string what = absl::StrCat("after batch ", batch);
  const std::optional<at::Tensor> hist = calib.calib_hist();
  const std::optional<at::Tensor> edges = calib.calib_bin_edges();
  if (!hist.has_value() || !edges.has_value()) {
    report.Fail(absl::StrCat(what, ": no histogram"));
    return;
  }
  const int64_t bins = hist->size(0);
  const int64_t total = hist->sum().item<int64_t>();
  if (bins != after.at("num_bins").get<int64_t>() || bins != after.at("hist_len").get<int64_t>() ||
      edges->size(0) != after.at("edges_len").get<int64_t>() ||
      total != after.at("hist_total").get<int64_t>()) {
    report.Fail(absl::StrCat(what, ": ", bins, " bins, ", edges->size(0), " edges, total ", total,
                             "; expected ", after.dump()));
    return;
  }
  const std::vector<float> e = Floats(*edges);
  if (golden::UlpDistance(e[1], golden::ToFloat(after.at("edge_1"))) > 2 ||
      golden::UlpDistance(e.back(), golden::ToFloat(after.at("edge_last"))) > 2) {
    report.Fail(absl::StrCat(what, ": edges[1] ", e[1], ", last edge ", e.back(), "; expected ",
                             after.dump()));
  }
}

}  // namespace

CaseReport RunMaxCalibratorCase(const Json& c) {
  CaseReport report;
  const Json& params = c.at("params");
  const Json& expected = c.at("expected");
  const int error_at = expected.contains("error_at_batch") && !expected["error_at_batch"].is_null()
                           ? expected["error_at_batch"].get<int>()
                           : -1;
  quant::MaxCalibrator calib = NewMaxCalibrator(params);
  const Json& batches = c.at("batches");
  int accepted = 0;
  for (const Json& batch : batches) {
    const absl::Status status = Catch([&] { calib.collect(ToTorch(batch)); });
    const std::string what = absl::StrCat("batch ", accepted);
    if (accepted == error_at) {
      golden::ExpectMappedError(report, what, expected.at("error"), status);
      break;
    }
    golden::ExpectOk(report, what, status);
    ++accepted;
  }
  ExpectAmax(report, "amax", expected.at("amax"), calib.compute_amax());
  if (expected.contains("amaxs")) {
    const Json& amaxs = expected["amaxs"];
    if (calib.amaxs().size() != amaxs.size()) {
      report.Fail(
          absl::StrCat("amaxs has ", calib.amaxs().size(), " entries, expected ", amaxs.size()));
    }
    for (size_t b = 0; b < std::min(amaxs.size(), calib.amaxs().size()); ++b) {
      if (b == 0) {
        // The reference's first entry is its running amax itself (appended, then updated in
        // place), so it reads as the final amax; qcal's is the first batch's own amax.
        ExpectAmax(report, "amaxs[0] (the reference's running amax)", amaxs[0],
                   calib.compute_amax());
        quant::MaxCalibrator first = NewMaxCalibrator(params);
        first.collect(ToTorch(batches[0]));
        const at::Tensor own = *first.compute_amax();
        if (calib.amaxs()[0].sizes() != own.sizes() || Floats(calib.amaxs()[0]) != Floats(own)) {
          report.Fail("amaxs[0] is not the first batch's own amax");
        }
        continue;
      }
      ExpectAmax(report, absl::StrCat("amaxs[", b, "]"), amaxs[b], calib.amaxs()[b]);
    }
  }
  if (expected.contains("str") && calib.str() != expected["str"].get<std::string>()) {
    report.Fail(absl::StrCat("str ", calib.str(), ", expected ", expected["str"].dump()));
  }
  if (expected.contains("repr") && calib.repr() != expected["repr"].get<std::string>()) {
    report.Fail(absl::StrCat("repr ", calib.repr(), ", expected ", expected["repr"].dump()));
  }
  return report;
}

CaseReport RunHistogramCase(const Json& c) {
  CaseReport report;
  const Json& params = c.at("params");
  const Json& expected = c.at("expected");
  std::optional<quant::HistogramCalibrator> calib;
  const absl::Status created = Catch([&] { calib.emplace(HistogramOptions(params)); });
  if (expected.value("error_at", "") == "constructor") {
    golden::ExpectMappedError(report, "constructor", expected.at("error"), created);
    return report;
  }
  golden::ExpectOk(report, "constructor", created);
  if (!created.ok()) return report;
  const Json& error_at_json = expected.value("error_at_batch", Json());
  const int error_at = error_at_json.is_null() ? -1 : error_at_json.get<int>();
  const Json& batches = c.at("batches");
  for (size_t b = 0; b < batches.size(); ++b) {
    const absl::Status status = Catch([&] { calib->collect(ToTorch(batches[b])); });
    const std::string what = absl::StrCat("collect batch ", b);
    if (static_cast<int>(b) == error_at) {
      golden::ExpectMappedError(report, what, expected.at("error"), status);
      break;
    }
    golden::ExpectOk(report, what, status);
    if (b < expected.at("after_each_batch").size()) {
      CheckAfterBatch(report, b, expected["after_each_batch"][b], *calib);
    }
  }
  CheckHistogramState(report, expected, *calib);
  const Json& entries = expected.at("compute_amax");
  for (size_t k = 0; k < entries.size(); ++k) {
    CheckAmaxEntry(
        report, *calib, entries[k],
        absl::StrCat("compute_amax[", k, "] ", entries[k].at("method").get<std::string>(), " ",
                     entries[k].at("kwargs").dump()));
  }
  if (expected.contains("str") && calib->str() != expected["str"].get<std::string>()) {
    report.Fail(absl::StrCat("str ", calib->str(), ", expected ", expected["str"].dump()));
  }
  return report;
}

}  // namespace qcal::golden_quant
