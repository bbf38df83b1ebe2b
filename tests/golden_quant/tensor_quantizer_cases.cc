// tensor_quantizer.json through quant/: QuantDescriptorFromJson (the reference's keyword
// arguments), TensorQuantizer's steps and printable forms, and the ONNX Q/DQ parameters qcal's
// export derives from the quantizer (server/tables/qdq_scale.h, the code ExportOnnx runs).
#include <ATen/ops/tensor.h>

#include "absl/strings/str_cat.h"
#include "kernels/quant_bound.h"
#include "quant/quant_descriptor_json.h"
#include "quant/tensor_quantizer.h"
#include "server/tables/qdq_scale.h"
#include "tests/golden_quant/quant_golden.h"

namespace qcal::golden_quant {
namespace {

using quant::TensorQuantizer;

void ExpectString(CaseReport& report, const std::string& what, const std::string& actual,
                  const Json& expected) {
  if (actual != expected.get<std::string>()) {
    report.Fail(absl::StrCat(what, " ", Json(actual).dump(), ", expected ", expected.dump()));
  }
}

bool HistogramMethod(const Json& step) {
  const Json& args = step.value("args", Json::array());
  return !args.empty() && args[0] != "max";
}

void RunStep(CaseReport& report, TensorQuantizer& q, const Json& step, size_t index,
             bool& amax_from_search) {
  const std::string op = step.at("op").get<std::string>();
  const std::string what = absl::StrCat("step ", index, " ", op);
  absl::Status status;
  at::Tensor output;
  if (op == "forward") {
    status = Catch([&] { output = q(ToTorch(step.at("input"))); });
  } else if (op == "set_amax") {
    status = Catch([&] { q->set_amax(ToTorch(step.at("value"))); });
  } else if (op == "calib_start") {
    q->disable_quant();
    status = Catch([&] { q->enable_calib(); });
  } else if (op == "calib_collect") {
    status = Catch([&] { q(ToTorch(step.at("input"))); });
  } else if (op == "load_calib_amax") {
    const Json& args = step.at("args");
    const Json& kwargs = step.at("kwargs");
    const std::string method = args.empty() ? "" : args[0].get<std::string>();
    const bool strict = kwargs.value("strict", true);
    status = Catch([&] { q->load_calib_amax(AmaxArgs(method, kwargs), strict); });
    amax_from_search = HistogramMethod(step);
  } else if (op == "calib_end") {
    q->enable_quant();
    q->disable_calib();
  } else if (op == "disable") {
    q->disable();
  } else {
    report.Fail(absl::StrCat(what, ": unknown op"));
    return;
  }
  if (step.contains("error")) {
    golden::ExpectMappedError(report, what, step["error"], status);
  } else {
    golden::ExpectOk(report, what, status);
    if (status.ok() && op == "forward") {
      const bool quantized = step.at("output_kind") == "quantized_values";
      ExpectTensor(report, absl::StrCat(what, " output"), step.at("output"), output,
                   /*sign_of_zero=*/!quantized);
      if (step.contains("scale")) {
        if (!q->scale().has_value()) {
          report.Fail(absl::StrCat(what, ": no scale"));
        } else {
          ExpectTensor(report, absl::StrCat(what, " scale"), step["scale"], *q->scale(), true);
        }
      }
    }
  }
  const Json& amax_after = step.at("amax_after");
  if (amax_after.is_null()) {
    if (q->amax().has_value()) report.Fail(absl::StrCat(what, ": qcal has an amax"));
  } else if (!q->amax().has_value()) {
    report.Fail(absl::StrCat(what, ": qcal has no amax"));
  } else if (amax_from_search) {
    // As histogram_calibrator.json's amax: within 2 ulp.
    ExpectTensorUlps(report, absl::StrCat(what, " amax"), amax_after, *q->amax(), 2);
  } else {
    ExpectTensor(report, absl::StrCat(what, " amax"), amax_after, *q->amax(), false);
  }
  ExpectString(report, absl::StrCat(what, " repr"), q->repr(), step.at("repr_after"));
}

// The Q/DQ parameters qcal's export writes for this quantizer (scale = amax / bound, 1 where
// amax is 0; zero point 0 of int8, uint8 when unsigned; the quantizer's axis; opset 13).
void CheckOnnxQdq(CaseReport& report, const TensorQuantizer& q, const Json& onnx) {
  if (!q->amax().has_value()) {
    report.Fail("onnx_qdq: the quantizer has no amax to export");
    return;
  }
  const std::vector<float> amax = Floats(*q->amax());
  std::vector<std::string> warnings;
  const absl::StatusOr<float> bound = kernels::QuantBound(q->num_bits(), q->is_unsigned());
  if (!bound.ok()) {
    report.Fail(absl::StrCat("onnx_qdq: ", bound.status().ToString()));
    return;
  }
  const std::optional<int> axis =
      q->axis().per_tensor() ? std::nullopt : std::optional<int>(q->axis().axes()[0]);
  const auto scales =
      server::ScalesFromAmax(amax, *bound, {"quantizer", "tensor", axis}, &warnings);
  if (!scales.ok()) {
    report.Fail(absl::StrCat("onnx_qdq: ", scales.status().ToString()));
    return;
  }
  const golden::GoldenTensor want = golden::ToTensor(onnx.at("scale"));
  golden::ExpectSameFloats(report, "onnx_qdq scale", want.data, *scales);
  const std::string dtype = q->is_unsigned() ? "uint8" : "int8";
  if (onnx.at("zero_point_dtype") != dtype) {
    report.Fail(absl::StrCat("onnx_qdq zero point ", dtype, ", expected ",
                             onnx.at("zero_point_dtype").dump()));
  }
  for (const Json& z : onnx.at("zero_point").at("data")) {
    if (z.get<int>() != 0) report.Fail("onnx_qdq: the reference's zero point is not 0");
  }
  const Json want_axis = onnx.at("axis");
  if ((want_axis.is_null() != !axis.has_value()) ||
      (axis.has_value() && want_axis.get<int>() != *axis)) {
    report.Fail(absl::StrCat("onnx_qdq axis, expected ", want_axis.dump()));
  }
  if (onnx.at("opset").get<int>() != 13) report.Fail("onnx_qdq: opset is not 13");
}

// Builds the case's quantizer and replays its steps; std::nullopt when the descriptor is
// refused (as expected or not).
std::optional<TensorQuantizer> RunSteps(CaseReport& report, const Json& c) {
  std::optional<quant::QuantDescriptor> desc;
  const absl::Status parsed =
      Catch([&] { desc.emplace(quant::QuantDescriptorFromJson(c.at("descriptor"))); });
  if (c.contains("expected") && c["expected"].contains("descriptor_error")) {
    golden::ExpectMappedError(report, "descriptor", c["expected"]["descriptor_error"], parsed);
    return std::nullopt;
  }
  golden::ExpectOk(report, "descriptor", parsed);
  if (!parsed.ok()) return std::nullopt;
  ExpectString(report, "descriptor str", desc->str(), c.at("descriptor_str"));
  std::optional<TensorQuantizer> q;
  const absl::Status made = Catch([&] { q.emplace(*desc); });
  golden::ExpectOk(report, "TensorQuantizer", made);
  if (!made.ok()) return std::nullopt;
  ExpectString(report, "repr_initial", (*q)->repr(), c.at("repr_initial"));
  bool amax_from_search = false;
  const Json& steps = c.value("steps", Json::array());
  for (size_t k = 0; k < steps.size(); ++k) RunStep(report, *q, steps[k], k, amax_from_search);
  return q;
}

}  // namespace

CaseReport RunTensorQuantizerCase(const Json& c) {
  CaseReport report;
  const std::optional<TensorQuantizer> q = RunSteps(report, c);
  if (q.has_value() && c.contains("onnx_qdq")) {
    if (c["onnx_qdq"].contains("error")) {
      report.Fail("onnx_qdq: the reference refuses the export; qcal has no such rule");
    } else {
      CheckOnnxQdq(report, *q, c["onnx_qdq"]);
    }
  }
  return report;
}

CaseReport NarrowRangeExport(const Json& c) {
  CaseReport report;
  const std::optional<TensorQuantizer> q = RunSteps(report, c);
  if (!q.has_value() || !(*q)->narrow_range()) {
    report.Fail("not a narrow-range quantizer");
    return report;
  }
  // qcal exports the full-range int8 parameters: scale amax / 127, zero point 0, per tensor.
  const float amax = (*q)->amax()->item<float>();
  CheckOnnxQdq(report, *q,
               Json{{"scale", {{"shape", Json::array()}, {"data", {amax / 127.0f}}}},
                    {"zero_point", {{"shape", Json::array()}, {"data", {0}}}},
                    {"zero_point_dtype", "int8"},
                    {"axis", nullptr},
                    {"opset", 13}});
  return report;
}

CaseReport DynamicAxisOutOfRange(const Json& c) {
  CaseReport report;
  const std::optional<quant::QuantDescriptor> desc =
      quant::QuantDescriptorFromJson(c.at("descriptor"));
  TensorQuantizer q(*desc);
  const std::string before = q->repr();
  const Json& step = c.at("steps").at(0);  // forward of a 4-D input, axis 5
  golden::ExpectMappedError(report, "forward", Json{{"type", "ValueError"}, {"message", ""}},
                            Catch([&] { q(ToTorch(step.at("input"))); }));
  if (q->amax().has_value()) report.Fail("a refused forward set an amax");
  if (q->repr() != before) report.Fail("a refused forward changed the quantizer");
  return report;
}

CaseReport DescriptorNumBitsZero(const Json& c) {
  CaseReport report;
  golden::ExpectMappedError(report, "descriptor", Json{{"type", "ValueError"}, {"message", ""}},
                            Catch([&] { quant::QuantDescriptorFromJson(c.at("descriptor")); }));
  return report;
}

}  // namespace qcal::golden_quant
