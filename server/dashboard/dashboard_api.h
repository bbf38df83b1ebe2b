// The dashboard's JSON API (README, "Dashboard"): what the models hold, read from the core
// without marking any model used (CalibrationCore::WatchModel), so watching keeps no model from
// its --model-ttl.
//
//   GET /api/v1/models                                 every model, its quantizers and counters
//   GET /api/v1/models/{model}                         one model, as an entry of the list
//   GET /api/v1/models/{model}/quantizers/{quantizer}  its histogram, and each method's amax
//
// {model} and {quantizer} are percent-encoded path segments (a '/' in a name is %2F).
//
//   DashboardApi api(core);
//   HttpAnswer answer = api.Answer("/api/v1/models");   // 200, application/json
#ifndef QCAL_SERVER_DASHBOARD_DASHBOARD_API_H_
#define QCAL_SERVER_DASHBOARD_DASHBOARD_API_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/calibration_core.h"
#include "server/http/http_server.h"

namespace qcal::server {

// A histogram longer than this is sent with adjacent bins summed (the smallest integer factor
// that fits; "merged_bins" says which), so that a reference-layout histogram of up to 2^20 bins
// stays a page's worth. Clipped fractions are computed on the full histogram.
inline constexpr int64_t kDashboardMaxBins = 8192;

// The percentile the dashboard's "percentile" amax uses (ComputeAmax's default).
inline constexpr double kDashboardPercentile = 99.99;

// How long one quantizer's answer may search in all: the methods still running then are stopped
// and answered with an error, so that a huge histogram (a reference layout of 2^20 bins) cannot
// hold the HTTP threads, which /healthz and /metrics share.
inline constexpr absl::Duration kDashboardSearchTime = absl::Seconds(10);

class DashboardApi {
 public:
  explicit DashboardApi(CalibrationCore& core) : core_(core) {}

  // Whether `path` is under /api/.
  static bool Serves(absl::string_view path);
  // The answer to a GET of `path` (under /api/): JSON, 200 or an error object
  // {"error": {"code": "NOT_FOUND", "message": "..."}} with 404 for an unknown model, quantizer
  // or path, 400 for a malformed percent-encoding or a name that is not a name, 503 when
  // --max-state-bytes has no room for a search's copy, 500 otherwise.
  HttpAnswer Answer(absl::string_view path) const;

 private:
  CalibrationCore& core_;
};

// `text` with every %XX replaced by its byte ('+' stays '+': these are path segments); nullopt
// for a '%' not followed by two hex digits.
std::optional<std::string> PercentDecode(absl::string_view text);

}  // namespace qcal::server

#endif  // QCAL_SERVER_DASHBOARD_DASHBOARD_API_H_
