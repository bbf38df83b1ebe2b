#include "server/tables/compute_amax.h"

#include <charconv>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/amax_search.h"
#include "server/base/names.h"
#include "server/base/status_util.h"

namespace qcal::server {
namespace {

// The shortest text that reads back as `value`: 100.0001 stays 100.0001 (StrCat would print 100).
std::string FullPrecision(double value) {
  char text[32];
  const std::to_chars_result result = std::to_chars(text, text + sizeof(text), value);
  return std::string(text, result.ptr);
}

}  // namespace

absl::StatusOr<MethodParams> NormalizeMethodParams(const MethodParams& params,
                                                   absl::string_view where) {
  MethodParams out = params;
  if (out.method != "max" && out.method != "entropy" && out.method != "mse" &&
      out.method != "percentile") {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": unknown method '", ShortForMessage(out.method),
                     "'; expected one of max, entropy, mse, percentile"));
  }
  // 0 is "unset" on the wire; anything else is a parameter the caller meant for this method.
  if (out.percentile != 0 && out.method != "percentile") {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": percentile ", FullPrecision(out.percentile),
                     " applies only to method percentile, not '", out.method, "'"));
  }
  const bool searches = out.method == "entropy" || out.method == "mse";
  for (const auto& [name, value] :
       {std::pair{"start_bin", out.start_bin}, std::pair{"stride", out.stride}}) {
    if (value != 0 && !searches) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", name, " ", value,
                       " applies only to methods entropy and mse, not '", out.method, "'"));
    }
  }
  if (out.percentile == 0) out.percentile = kDefaultPercentile;
  // Written so that NaN fails too.
  if (!(out.percentile > 0 && out.percentile <= 100)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": percentile ", FullPrecision(params.percentile), " is outside (0, 100]"));
  }
  if (out.start_bin < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": start_bin ", out.start_bin, " is negative"));
  }
  if (out.stride < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": stride ", out.stride, " is negative"));
  }
  if (out.start_bin == 0) out.start_bin = kDefaultStartBin;
  if (out.stride == 0) out.stride = kDefaultStride;
  return out;
}

absl::StatusOr<float> HistogramAmax(const kernels::Histogram& histogram, const MethodParams& params,
                                    int num_bits, bool is_unsigned, kernels::QuantFormat format,
                                    absl::string_view quantizer,
                                    const std::function<bool()>* cancelled) {
  const HistogramView view{
      .empty = histogram.empty(),
      .abs_max = histogram.abs_max(),
      .bins = static_cast<int64_t>(histogram.Counts().size()),
      .search = [&](kernels::AmaxMethod method, const kernels::SearchOptions& options,
                    double percentile) -> absl::StatusOr<kernels::AmaxChoice> {
        switch (method) {
          case kernels::AmaxMethod::kEntropy:
            return kernels::EntropyAmax(histogram.Counts(), histogram.Edges(), options);
          case kernels::AmaxMethod::kMse:
            return kernels::MseAmax(histogram.Counts(), histogram.Edges(), options);
          case kernels::AmaxMethod::kPercentile:
            return kernels::PercentileAmax(histogram.Counts(), histogram.Edges(), percentile,
                                           options.cancelled);
          case kernels::AmaxMethod::kMax:
            break;
        }
        return absl::InvalidArgumentError("max is not a histogram search");
      }};
  return HistogramAmax(view, params, num_bits, is_unsigned, format, quantizer, cancelled);
}

absl::StatusOr<float> HistogramAmax(const HistogramView& histogram, const MethodParams& params,
                                    int num_bits, bool is_unsigned, kernels::QuantFormat format,
                                    absl::string_view quantizer,
                                    const std::function<bool()>* cancelled) {
  if (histogram.empty) {
    return absl::FailedPreconditionError(absl::StrCat("quantizer '", quantizer, "' has no data"));
  }
  if (params.method == "max") return histogram.abs_max;
  // Only zeros or only non-finite values so far: there is no range to search.
  if (histogram.bins == 0) return 0.0f;

  const int64_t bins = histogram.bins;
  const std::string where =
      absl::StrCat("quantizer '", quantizer, "' (method ", params.method, ")");
  if (params.method == "percentile") {
    absl::StatusOr<kernels::AmaxChoice> choice =
        histogram.search(kernels::AmaxMethod::kPercentile,
                         {.cancelled = cancelled, .format = format}, params.percentile);
    if (!choice.ok()) return Annotate(choice.status(), where);
    return choice->amax;
  }
  const bool entropy = params.method == "entropy";
  if (entropy ? params.start_bin > bins : params.start_bin >= bins) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": start_bin ", params.start_bin, " is beyond the histogram's ", bins, " bins (",
        entropy ? "entropy needs start_bin <= bins" : "mse needs start_bin < bins", ")"));
  }
  const kernels::SearchOptions options{.num_bits = num_bits,
                                       .is_unsigned = is_unsigned,
                                       .start_bin = params.start_bin,
                                       .stride = params.stride,
                                       .cancelled = cancelled,
                                       .format = format};
  absl::StatusOr<kernels::AmaxChoice> choice = histogram.search(
      entropy ? kernels::AmaxMethod::kEntropy : kernels::AmaxMethod::kMse, options, 0.0);
  if (!choice.ok()) return Annotate(choice.status(), where);
  return choice->amax;
}

}  // namespace qcal::server
