// tensor_quant.json and the forward/backward half of ste_backward.json.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/fake_quant.h"
#include "tests/golden/golden_families.h"

namespace qcal::golden {
namespace {

using kernels::QuantParams;
using kernels::TensorView;

QuantParams ParamsOf(const Json& params) {
  return QuantParams{params.at("num_bits").get<int>(), params.at("unsigned").get<bool>(),
                     params.at("narrow_range").get<bool>()};
}

TensorView ViewOf(const GoldenTensor& t) { return TensorView{t.data, t.shape}; }

void ExpectTensor(CaseReport& report, const std::string& what, const Json& expected,
                  const std::vector<float>& data, const std::vector<int64_t>& shape,
                  bool sign_of_zero) {
  const GoldenTensor want = ToTensor(expected);
  if (want.shape != shape) {
    report.Fail(absl::StrCat(what, " shape [", absl::StrJoin(shape, ","), "], expected [",
                             absl::StrJoin(want.shape, ","), "]"));
    return;
  }
  ExpectSameFloats(report, what, want.data, data, sign_of_zero);
}

}  // namespace

CaseReport RunTensorQuantCase(const Json& golden_case) {
  CaseReport report;
  const QuantParams params = ParamsOf(golden_case.at("params"));
  const GoldenTensor x = ToTensor(golden_case.at("input"));
  const GoldenTensor amax = ToTensor(golden_case.at("amax"));
  const Json& expected = golden_case.at("expected");

  const auto quant = kernels::TensorQuant(ViewOf(x), ViewOf(amax), params);
  const Json& tq = expected.at("tensor_quant");
  if (tq.contains("error")) {
    ExpectMappedError(report, "tensor_quant", tq.at("error"), quant.status());
  } else if (!quant.ok()) {
    ExpectOk(report, "tensor_quant", quant.status());
  } else {
    // Quantized values are JSON integers, which carry no sign of zero.
    ExpectTensor(report, "tensor_quant quantized", tq.at("quantized"), quant->quantized.data,
                 quant->quantized.shape, /*sign_of_zero=*/false);
    ExpectTensor(report, "tensor_quant scale", tq.at("scale"), quant->scale.data,
                 quant->scale.shape, /*sign_of_zero=*/true);
  }

  const auto fake = kernels::FakeTensorQuant(ViewOf(x), ViewOf(amax), params);
  const Json& ftq = expected.at("fake_tensor_quant");
  if (ftq.contains("error")) {
    ExpectMappedError(report, "fake_tensor_quant", ftq.at("error"), fake.status());
  } else if (!fake.ok()) {
    ExpectOk(report, "fake_tensor_quant", fake.status());
  } else {
    ExpectTensor(report, "fake_tensor_quant output", ftq.at("output"), fake->data, fake->shape,
                 /*sign_of_zero=*/true);
  }
  return report;
}

std::optional<CaseReport> RunSteBackwardCase(const Json& golden_case) {
  const std::string op = golden_case.at("op").get<std::string>();
  if (op != "fake_tensor_quant" && op != "tensor_quant") return std::nullopt;
  CaseReport report;
  const QuantParams params = ParamsOf(golden_case.at("params"));
  const GoldenTensor x = ToTensor(golden_case.at("input"));
  const GoldenTensor amax = ToTensor(golden_case.at("amax"));
  const GoldenTensor grad_output = ToTensor(golden_case.at("grad_output"));
  const Json& expected = golden_case.at("expected");

  if (op == "fake_tensor_quant") {
    const auto fake = kernels::FakeTensorQuant(ViewOf(x), ViewOf(amax), params);
    ExpectOk(report, "forward", fake.status());
    if (fake.ok()) {
      ExpectTensor(report, "forward output", expected.at("output"), fake->data, fake->shape,
                   /*sign_of_zero=*/true);
    }
  } else {
    const auto quant = kernels::TensorQuant(ViewOf(x), ViewOf(amax), params);
    ExpectOk(report, "forward", quant.status());
    if (quant.ok()) {
      ExpectTensor(report, "forward output_quantized", expected.at("output_quantized"),
                   quant->quantized.data, quant->quantized.shape, /*sign_of_zero=*/false);
    }
  }
  const auto grad = kernels::StraightThroughGrad(ViewOf(x), ViewOf(amax), ViewOf(grad_output));
  ExpectOk(report, "backward", grad.status());
  if (grad.ok()) {
    // README: grad_input exact, -0.0 == 0.
    ExpectTensor(report, "grad_input", expected.at("grad_input"), grad->data, grad->shape,
                 /*sign_of_zero=*/false);
  }
  if (!expected.at("grad_amax").is_null()) report.Fail("reference gave amax a gradient");
  return report;
}

}  // namespace qcal::golden
