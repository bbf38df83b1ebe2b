#include "server/dashboard/dashboard_api.h"

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kernels/quant_format.h"
#include "nlohmann/json.hpp"
#include "server/base/status_util.h"
#include "server/core/model.h"
#include "server/tables/compute_amax.h"

namespace qcal::server {
namespace {

// Prometheus counters are doubles; these count whole batches and bytes (exact below 2^53).
int64_t Count(double counter) { return static_cast<int64_t>(counter); }

using nlohmann::json;

constexpr char kJson[] = "application/json";
constexpr absl::string_view kModels = "/api/v1/models";
constexpr std::array<const char*, 4> kMethods = {"max", "entropy", "mse", "percentile"};

HttpAnswer JsonAnswer(unsigned status, const json& body) {
  return {.status = status, .content_type = kJson, .body = body.dump() + "\n"};
}

HttpAnswer ErrorAnswer(const absl::Status& status) {
  unsigned code = 500;
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      code = 404;
      break;
    case absl::StatusCode::kInvalidArgument:
      code = 400;
      break;
    case absl::StatusCode::kResourceExhausted:
      code = 503;
      break;
    default:
      break;
  }
  return JsonAnswer(code, {{"error",
                            {{"code", absl::StatusCodeToString(status.code())},
                             {"message", std::string(status.message())}}}});
}

json QuantizerEntry(const QuantizerInfo& quantizer) {
  return {{"name", quantizer.spec.name},
          {"calibrator", CalibratorKindName(quantizer.spec.calibrator)},
          {"axis", quantizer.spec.axis.has_value() ? json(*quantizer.spec.axis) : json(nullptr)},
          {"num_bits", quantizer.spec.num_bits},
          {"format", std::string(kernels::QuantFormatName(quantizer.spec.format))},
          {"unsigned", quantizer.spec.is_unsigned},
          {"batches", quantizer.stats.batches},
          {"elements", quantizer.stats.elements},
          {"nonfinite", quantizer.stats.nonfinite},
          {"bytes", quantizer.stats.bytes},
          {"bins", quantizer.bins},
          {"amax_size", quantizer.amax_size}};
}

json ModelEntry(const ModelInfo& info, const Metrics::Ingest& ingest) {
  json quantizers = json::array();
  for (const QuantizerInfo& quantizer : info.quantizers) {
    quantizers.push_back(QuantizerEntry(quantizer));
  }
  return {
      {"name", info.name},
      {"ingest", {{"bytes_total", Count(ingest.bytes)}, {"batches_total", Count(ingest.batches)}}},
      {"quantizers", std::move(quantizers)}};
}

// The share of the histogram's elements above `amax` (what the method clips): each bin's elements
// as if spread evenly from its lower edge to its upper edge or abs_max, whichever is lower (no
// element lies past abs_max, so amax = abs_max clips nothing); a bin that starts at abs_max holds
// that value alone.
double ClippedFraction(const HistogramSnapshot& histogram, double amax) {
  double total = 0;
  double clipped = 0;
  for (size_t i = 0; i < histogram.counts.size(); ++i) {
    const double count = static_cast<double>(histogram.counts[i]);
    const double low = histogram.edges[i];
    const double high = std::min<double>(histogram.edges[i + 1], histogram.abs_max);
    total += count;
    if (high <= low) {
      if (low > amax) clipped += count;
    } else if (high > amax) {
      clipped += count * (high - std::max(low, amax)) / (high - low);
    }
  }
  return total == 0 ? 0.0 : clipped / total;
}

// Edges and counts, with adjacent bins summed when there are more than kDashboardMaxBins.
json HistogramJson(const HistogramSnapshot& histogram) {
  const int64_t bins = static_cast<int64_t>(histogram.counts.size());
  const int64_t merged =
      bins <= kDashboardMaxBins ? 1 : (bins + kDashboardMaxBins - 1) / kDashboardMaxBins;
  json edges = json::array();
  json counts = json::array();
  for (int64_t i = 0; i < bins; i += merged) {
    uint64_t count = 0;
    for (int64_t j = i; j < std::min(bins, i + merged); ++j) count += histogram.counts[j];
    edges.push_back(static_cast<double>(histogram.edges[i]));
    counts.push_back(count);
  }
  if (bins > 0) edges.push_back(static_cast<double>(histogram.edges[bins]));
  return {{"edges", std::move(edges)},
          {"counts", std::move(counts)},
          {"merged_bins", merged},
          {"total", histogram.total},
          {"abs_max", static_cast<double>(histogram.abs_max)}};
}

json AmaxValues(const QuantizerAmax& amax) {
  json values = json::array();
  for (float value : amax.amax) values.push_back(static_cast<double>(value));
  return values;
}

absl::StatusOr<json> QuantizerJson(const Model& model, const QuantizerInfo& info) {
  const std::string& name = info.spec.name;
  json out = QuantizerEntry(info);
  out["model"] = model.name();
  if (info.spec.calibrator == CalibratorKind::kMax) {
    // A max calibrator keeps no histogram: its maxima, per channel or one.
    absl::StatusOr<QuantizerAmax> amax = model.QuantizerAmaxOf(name, {.method = "max"});
    if (absl::IsFailedPrecondition(amax.status())) {
      out["channel_amax"] = json::array();  // No data yet.
    } else if (!amax.ok()) {
      return amax.status();
    } else {
      out["channel_amax"] = AmaxValues(*amax);
    }
    return out;
  }
  QCAL_ASSIGN_OR_RETURN(HistogramSnapshot histogram, model.GetHistogram(name));
  out["histogram"] = HistogramJson(histogram);
  json methods = json::object();
  const absl::Time deadline = absl::Now() + kDashboardSearchTime;
  const std::function<bool()> late = [deadline] { return absl::Now() > deadline; };
  for (const char* method : kMethods) {
    MethodParams params{.method = method};
    if (params.method == "percentile") params.percentile = kDashboardPercentile;
    absl::StatusOr<QuantizerAmax> amax = model.QuantizerAmaxOf(name, params, &late);
    if (absl::IsResourceExhausted(amax.status())) return amax.status();
    if (absl::IsCancelled(amax.status())) {
      methods[method] = {
          {"error",
           absl::StrCat("not computed: the dashboard stops searching after ",
                        absl::FormatDuration(kDashboardSearchTime), "; qcal amax computes it")}};
      continue;
    }
    if (!amax.ok()) {
      // Before data, or a search this histogram cannot run (fewer bins than entropy's start).
      methods[method] = {{"error", std::string(amax.status().message())}};
      continue;
    }
    const double value = amax->amax.empty() ? 0.0 : static_cast<double>(amax->amax[0]);
    methods[method] = {{"amax", value}, {"clipped", ClippedFraction(histogram, value)}};
    if (params.method == "percentile") methods[method]["percentile"] = kDashboardPercentile;
  }
  out["amax"] = std::move(methods);
  return out;
}

absl::StatusOr<std::string> DecodeName(absl::string_view segment, absl::string_view what) {
  if (segment.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  std::optional<std::string> decoded = PercentDecode(segment);
  if (!decoded.has_value() || decoded->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", segment, "' is not a percent-encoded name"));
  }
  return *std::move(decoded);
}

}  // namespace

std::optional<std::string> PercentDecode(absl::string_view text) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int high = hex(text[i + 1]);
    const int low = hex(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

bool DashboardApi::Serves(absl::string_view path) { return absl::StartsWith(path, "/api/"); }

HttpAnswer DashboardApi::Answer(absl::string_view path) const {
  if (path == kModels) {
    json models = json::array();
    Metrics::Ingest all;
    for (const ModelInfo& info : core_.ListModels()) {
      const Metrics::Ingest ingest = core_.metrics().IngestOf(info.name);
      all.bytes += ingest.bytes;
      all.batches += ingest.batches;
      models.push_back(ModelEntry(info, ingest));
    }
    return JsonAnswer(
        200,
        {{"models", std::move(models)},
         {"ingest", {{"bytes_total", Count(all.bytes)}, {"batches_total", Count(all.batches)}}}});
  }
  // /api/v1/models/{model}[/quantizers/{quantizer}]: a name's '/' is %2F, so segments split.
  const std::vector<absl::string_view> parts =
      absl::StrSplit(path.substr(std::min(path.size(), kModels.size() + 1)), '/');
  const bool model_path = absl::StartsWith(path, absl::StrCat(kModels, "/")) &&
                          (parts.size() == 1 || (parts.size() == 3 && parts[1] == "quantizers"));
  if (!model_path) {
    return ErrorAnswer(absl::NotFoundError(absl::StrCat("no API at ", path, "; there are ", kModels,
                                                        ", ", kModels, "/{model} and ", kModels,
                                                        "/{model}/quantizers/{quantizer}")));
  }
  absl::StatusOr<std::string> model_name = DecodeName(parts[0], "model");
  if (!model_name.ok()) return ErrorAnswer(model_name.status());
  absl::StatusOr<std::shared_ptr<const Model>> model = core_.WatchModel(*model_name);
  if (!model.ok()) return ErrorAnswer(model.status());
  const ModelInfo info = (*model)->Info();
  if (parts.size() == 1)
    return JsonAnswer(200, ModelEntry(info, core_.metrics().IngestOf(info.name)));

  absl::StatusOr<std::string> quantizer = DecodeName(parts[2], "quantizer");
  if (!quantizer.ok()) return ErrorAnswer(quantizer.status());
  for (const QuantizerInfo& entry : info.quantizers) {
    if (entry.spec.name != *quantizer) continue;
    absl::StatusOr<json> out = QuantizerJson(**model, entry);
    return out.ok() ? JsonAnswer(200, *out) : ErrorAnswer(out.status());
  }
  return ErrorAnswer(absl::NotFoundError(
      absl::StrCat("model '", info.name, "' has no quantizer '", *quantizer, "'")));
}

}  // namespace qcal::server
