// How ComputeAmax picks amax for one quantizer: method dispatch and parameter validation.
// The searches themselves live in kernels/amax_search.h (pytorch-quantization's
// HistogramCalibrator.compute_amax); this file decides which one runs and checks its inputs.
//
//   QCAL_ASSIGN_OR_RETURN(MethodParams params, NormalizeMethodParams({.method = "entropy"}));
//   QCAL_ASSIGN_OR_RETURN(std::vector<float> amax, HistogramAmax(hist, params, 8, false,
//                                                             kernels::QuantFormat::kInt, name));
#ifndef QCAL_SERVER_TABLES_COMPUTE_AMAX_H_
#define QCAL_SERVER_TABLES_COMPUTE_AMAX_H_

#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/amax_search.h"
#include "kernels/histogram.h"
#include "kernels/histogram_amax.h"
#include "kernels/quant_format.h"

namespace qcal::server {

inline constexpr double kDefaultPercentile = 99.99;
inline constexpr int kDefaultStartBin = 128;
inline constexpr int kDefaultStride = 1;

struct MethodParams {
  // "max", "entropy", "mse" or "percentile".
  std::string method{};
  // percentile: in (0, 100]; 0 means kDefaultPercentile.
  double percentile = 0;
  // entropy and mse: first candidate bin (0 means kDefaultStartBin) and step (0 means 1).
  int start_bin = 0;
  int stride = 0;
};

struct AmaxRequest {
  MethodParams params{};
  // Per-quantizer methods (with their own parameters) that replace `params`.
  std::map<std::string, MethodParams> overrides{};
  // Polled between quantizers and inside every search (kernels::SearchOptions::cancelled); when it
  // returns true the computation stops with CANCELLED and nothing is stored. Empty: never. The
  // front-end sets it from its call (a gRPC call's IsCancelled, which its deadline also trips).
  std::function<bool()> cancelled{};
};

// Fills in the defaults (0 -> 99.99, 128, 1) and checks the rest.
// INVALID_ARGUMENT, naming `where` and the parameter (numbers in full precision), for an unknown
// method, a parameter the method does not use (a non-zero percentile without "percentile", a
// non-zero start_bin or stride without "entropy" or "mse"), a percentile outside (0, 100] (NaN
// included), a negative start_bin or stride.
absl::StatusOr<MethodParams> NormalizeMethodParams(const MethodParams& params,
                                                   absl::string_view where = "ComputeAmax");

// Amax of a histogram calibrator by `params` (normalized): "max" is the exact running max of the
// finite |x|; "entropy", "mse", "percentile" search the histogram. A histogram that has seen only
// zeros (or only non-finite values) has amax 0 whatever the method.
// `format` reaches the entropy and mse searches (kernels::SearchOptions::format: kFp8E4M3
// scores candidates by simulating E4M3, and then num_bits and is_unsigned are not used); max and
// percentile do not depend on it.
// `cancelled` (null: never) is polled by the search (kernels::SearchOptions::cancelled).
// Errors: INVALID_ARGUMENT when start_bin lies beyond the histogram's bins (entropy: > bins,
// mse: >= bins), naming the quantizer; FAILED_PRECONDITION for a histogram without data;
// CANCELLED when `cancelled` returned true.
absl::StatusOr<float> HistogramAmax(const kernels::Histogram& histogram, const MethodParams& params,
                                    int num_bits, bool is_unsigned, kernels::QuantFormat format,
                                    absl::string_view quantizer,
                                    const std::function<bool()>* cancelled = nullptr);

// What HistogramAmax reads of a histogram, wherever its counts live (a GPU's histogram searches
// on the device).
struct HistogramView {
  // kernels::Histogram::empty(), abs_max() and Counts().size().
  bool empty = true;
  float abs_max = 0.0f;
  int64_t bins = 0;
  // Runs kernels' entropy, mse or percentile search on the counts (only asked when bins > 0);
  // options.cancelled carries HistogramAmax's `cancelled` for every method.
  std::function<absl::StatusOr<kernels::AmaxChoice>(
      kernels::AmaxMethod method, const kernels::SearchOptions& options, double percentile)>
      search{};
};

// HistogramAmax on a view, with the same rules and errors.
absl::StatusOr<float> HistogramAmax(const HistogramView& histogram, const MethodParams& params,
                                    int num_bits, bool is_unsigned, kernels::QuantFormat format,
                                    absl::string_view quantizer,
                                    const std::function<bool()>* cancelled = nullptr);

}  // namespace qcal::server

#endif  // QCAL_SERVER_TABLES_COMPUTE_AMAX_H_
