#include "quant/histogram_calibrator.h"

#include <ATen/ops/empty.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kernels/histogram_amax.h"
#include "quant/cpu_float.h"
#include "quant/errors.h"
#include "quant/python_format.h"
#include "quant/tensor_format.h"

namespace qcal::quant {
namespace {

kernels::Histogram NewHistogram(const HistogramCalibrator::Options& options) {
  if (!options.axis.per_tensor()) {
    ThrowNotImplemented(absl::StrCat("Calibrator histogram collection only supports per tensor ",
                                     "scaling (axis ", options.axis.str(), " given)"));
  }
  if (!options.torch_hist) {
    ThrowNotImplemented(
        "HistogramCalibrator(torch_hist=false): numpy's histogram collection is not "
        "implemented; qcal collects as torch.histc does (torch_hist=true)");
  }
  absl::StatusOr<kernels::Histogram> histogram =
      kernels::Histogram::Create({.num_bins = options.num_bins, .skip_zeros = options.skip_zeros});
  ThrowIfError(histogram.status(), "HistogramCalibrator");
  return *std::move(histogram);
}

}  // namespace

HistogramCalibrator::HistogramCalibrator(Options options)
    : Calibrator(options.num_bits, options.axis, options.is_unsigned),
      histogram_(NewHistogram(options)),
      format_(options.format) {}

void HistogramCalibrator::collect(const at::Tensor& inputs) {
  const at::Tensor x = internal::ContiguousCpuFloat(inputs, "HistogramCalibrator input");
  const absl::StatusOr<kernels::CollectStats> stats = histogram_.Collect(internal::FloatSpan(x));
  ThrowIfError(stats.status(), "HistogramCalibrator.collect");
  nonfinite_ += stats->nonfinite;
}

void HistogramCalibrator::reset() {
  histogram_.Reset();
  nonfinite_ = 0;
}

std::optional<at::Tensor> HistogramCalibrator::compute_amax(const CalibAmaxArgs& args) {
  if (args.method.empty()) {
    ThrowValueError(
        "HistogramCalibrator.compute_amax needs a method: \"entropy\", \"mse\", \"percentile\" "
        "or \"max\"");
  }
  const absl::StatusOr<kernels::AmaxMethod> method = kernels::ParseAmaxMethod(args.method);
  ThrowIfError(method.status(), "HistogramCalibrator.compute_amax");
  const kernels::SearchOptions search{.num_bits = num_bits(),
                                      .is_unsigned = is_unsigned(),
                                      .start_bin = args.start_bin,
                                      .stride = args.stride,
                                      .format = format_};
  const absl::StatusOr<kernels::AmaxChoice> choice =
      kernels::HistogramAmax(histogram_, *method, search, args.percentile);
  // FAILED_PRECONDITION: nothing collected yet (the reference returns None).
  if (choice.status().code() == absl::StatusCode::kFailedPrecondition) return std::nullopt;
  ThrowIfError(choice.status(),
               absl::StrCat("HistogramCalibrator.compute_amax(", args.method, ")"));
  const float amax = choice->amax;
  return internal::FloatTensor({&amax, 1}, {});
}

std::optional<at::Tensor> HistogramCalibrator::calib_hist() const {
  const auto counts = histogram_.Counts();
  if (counts.empty()) return std::nullopt;
  at::Tensor t =
      at::empty({static_cast<int64_t>(counts.size())}, at::TensorOptions().dtype(at::kLong));
  std::copy(counts.begin(), counts.end(), t.data_ptr<int64_t>());
  return t;
}

std::optional<at::Tensor> HistogramCalibrator::calib_bin_edges() const {
  const auto edges = histogram_.Edges();
  if (edges.empty()) return std::nullopt;
  return internal::FloatTensor(edges, {static_cast<int64_t>(edges.size())});
}

std::string HistogramCalibrator::str() const {
  const auto edges = histogram_.Edges();
  std::string edge_str = "None";
  if (!edges.empty()) {
    edge_str = absl::StrCat("[", internal::PyFixed(edges.front(), 3), ", ..., ",
                            internal::PyFixed(edges.back(), 3), "](", edges.size(), ")");
  }
  return absl::StrCat("HistogramCalibrator(calib_bin_edges=", edge_str, ")");
}

std::string HistogramCalibrator::repr() const {
  const std::optional<at::Tensor> edges = calib_bin_edges();
  const std::optional<at::Tensor> hist = calib_hist();
  return absl::StrCat("HistogramCalibrator(", BaseRepr(),
                      " calib_bin_edges=", edges ? internal::TorchTensorStr(*edges) : "None",
                      " calib_hist=", hist ? internal::TorchTensorStr(*hist) : "None",
                      " skip_zeros=", internal::PyBool(skip_zeros()), ")");
}

}  // namespace qcal::quant
