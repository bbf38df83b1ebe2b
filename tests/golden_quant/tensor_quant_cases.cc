// tensor_quant.json and ste_backward.json through quant/: tensor_quant and fake_tensor_quant
// (forward and the straight-through backward, via autograd), and TensorQuantizer's learn_amax
// clip stage.
#include <ATen/ops/tensor.h>

#include "absl/strings/str_cat.h"
#include "quant/tensor_quant.h"
#include "quant/tensor_quantizer.h"
#include "tests/golden_quant/quant_golden.h"

namespace qcal::golden_quant {
namespace {

struct Params {
  int num_bits;
  bool is_unsigned;
  bool narrow_range;
};

Params ParamsOf(const Json& p) {
  return {p.at("num_bits").get<int>(), p.at("unsigned").get<bool>(),
          p.at("narrow_range").get<bool>()};
}

constexpr double kSumRel = 1e-6;  // learn_amax gradient sums (README)

void ExpectScalarClose(CaseReport& report, const std::string& what, const Json& expected,
                       const at::Tensor& actual) {
  if (!actual.defined()) {
    report.Fail(absl::StrCat(what, ": no gradient"));
    return;
  }
  const double want = golden::ToTensor(expected).data.at(0);
  const double got = actual.item<double>();
  if (!golden::RelClose(got, want, kSumRel) && std::abs(got - want) > 1e-7) {
    report.Fail(absl::StrCat(what, " = ", got, ", expected ", want));
  }
}

CaseReport RunLearnAmaxCase(const Json& c) {
  CaseReport report;
  const Json& p = c.at("params");
  const Json& expected = c.at("expected");
  const Json& init = p.at("init_amax");
  quant::QuantDescriptor::Options options{.num_bits = p.at("num_bits").get<int>(),
                                          .learn_amax = true,
                                          .is_unsigned = p.at("unsigned").get<bool>(),
                                          .narrow_range = p.at("narrow_range").get<bool>()};
  if (!init.is_null()) options.amax = quant::DescriptorAmax::Scalar(init.get<float>());
  quant::TensorQuantizer quantizer(quant::QuantDescriptor(std::move(options)));
  const at::Tensor x = ToTorch(c.at("input")).requires_grad_(true);
  at::Tensor y;
  const absl::Status forward = Catch([&] { y = quantizer(x); });
  if (expected.contains("error")) {
    golden::ExpectMappedError(report, "forward", expected["error"], forward);
    return report;
  }
  golden::ExpectOk(report, "forward", forward);
  if (!forward.ok()) return report;
  ExpectTensor(report, "output", expected.at("output"), y, /*sign_of_zero=*/true);
  y.backward(ToTorch(c.at("grad_output")));
  ExpectTensor(report, "grad_input", expected.at("grad_input"), x.grad(), /*sign_of_zero=*/false);
  const quant::Clip& clip = quantizer->clip();
  ExpectScalarClose(report, "grad_clip_value_min", expected.at("grad_clip_value_min"),
                    clip->clip_value_min().grad());
  ExpectScalarClose(report, "grad_clip_value_max", expected.at("grad_clip_value_max"),
                    clip->clip_value_max().grad());
  ExpectTensor(report, "clip_value_min", expected.at("clip_value_min"), clip->clip_value_min(),
               true);
  ExpectTensor(report, "clip_value_max", expected.at("clip_value_max"), clip->clip_value_max(),
               true);
  return report;
}

}  // namespace

CaseReport RunTensorQuantCase(const Json& c) {
  CaseReport report;
  const Params p = ParamsOf(c.at("params"));
  const at::Tensor x = ToTorch(c.at("input"));
  const at::Tensor amax = ToTorch(c.at("amax"));
  const Json& expected = c.at("expected");

  at::Tensor quantized, scale;
  const absl::Status quant_status = Catch([&] {
    std::tie(quantized, scale) =
        quant::tensor_quant(x, amax, p.num_bits, p.is_unsigned, p.narrow_range);
  });
  const Json& tq = expected.at("tensor_quant");
  if (tq.contains("error")) {
    golden::ExpectMappedError(report, "tensor_quant", tq["error"], quant_status);
  } else if (!quant_status.ok()) {
    golden::ExpectOk(report, "tensor_quant", quant_status);
  } else {
    // Quantized values are JSON integers, which carry no sign of zero.
    ExpectTensor(report, "tensor_quant quantized", tq.at("quantized"), quantized, false);
    ExpectTensor(report, "tensor_quant scale", tq.at("scale"), scale, true);
  }

  at::Tensor fake;
  const absl::Status fake_status = Catch(
      [&] { fake = quant::fake_tensor_quant(x, amax, p.num_bits, p.is_unsigned, p.narrow_range); });
  const Json& ftq = expected.at("fake_tensor_quant");
  if (ftq.contains("error")) {
    golden::ExpectMappedError(report, "fake_tensor_quant", ftq["error"], fake_status);
  } else if (!fake_status.ok()) {
    golden::ExpectOk(report, "fake_tensor_quant", fake_status);
  } else {
    ExpectTensor(report, "fake_tensor_quant output", ftq.at("output"), fake, true);
  }
  return report;
}

CaseReport RunSteBackwardCase(const Json& c) {
  const std::string op = c.at("op").get<std::string>();
  if (op == "tensor_quantizer_learn_amax") return RunLearnAmaxCase(c);
  CaseReport report;
  const Params p = ParamsOf(c.at("params"));
  const at::Tensor x = ToTorch(c.at("input")).requires_grad_(true);
  const at::Tensor amax = ToTorch(c.at("amax")).requires_grad_(true);
  const at::Tensor grad_output = ToTorch(c.at("grad_output"));
  const Json& expected = c.at("expected");
  at::Tensor out;
  const absl::Status forward = Catch([&] {
    if (op == "fake_tensor_quant") {
      out = quant::fake_tensor_quant(x, amax, p.num_bits, p.is_unsigned, p.narrow_range);
    } else {
      out = std::get<0>(quant::tensor_quant(x, amax, p.num_bits, p.is_unsigned, p.narrow_range));
    }
  });
  golden::ExpectOk(report, "forward", forward);
  if (!forward.ok()) return report;
  if (op == "fake_tensor_quant") {
    ExpectTensor(report, "output", expected.at("output"), out, true);
  } else {
    ExpectTensor(report, "output_quantized", expected.at("output_quantized"), out, false);
  }
  out.backward(grad_output);
  // README: grad_input exact, -0.0 == 0; amax gets no gradient.
  ExpectTensor(report, "grad_input", expected.at("grad_input"), x.grad(), false);
  if (!expected.at("grad_amax").is_null()) report.Fail("reference gave amax a gradient");
  if (amax.grad().defined()) report.Fail("qcal gave amax a gradient");
  return report;
}

}  // namespace qcal::golden_quant
