#include "client/cli/format.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "qcal/client.h"

namespace qcal::cli {
namespace {

std::string CalibratorName(v1::CalibratorKind kind) {
  switch (kind) {
    case v1::CALIBRATOR_MAX:
      return "max";
    case v1::CALIBRATOR_HISTOGRAM:
      return "histogram";
    default:
      return "default";
  }
}

std::string AxisText(const v1::QuantizerSpec& spec) {
  return spec.has_axis() ? absl::StrCat(spec.axis()) : "-";
}

std::string SpecText(const v1::QuantizerSpec& spec) {
  const bool histogram = spec.calibrator() == v1::CALIBRATOR_HISTOGRAM;
  const std::string width =
      spec.format() == v1::QUANT_FORMAT_FP8_E4M3
          ? "FP8 E4M3"
          : absl::StrCat(spec.num_bits() == 0 ? "8 (default)" : absl::StrCat(spec.num_bits()),
                         "-bit", spec.is_unsigned() ? " unsigned" : "");
  return absl::StrCat(CalibratorName(spec.calibrator()), ", ", width, ", ",
                      spec.has_axis() ? absl::StrCat("axis ", spec.axis()) : "per-tensor",
                      histogram ? absl::StrCat(", ", spec.num_bins(), " bins") : "",
                      histogram && spec.skip_zeros() ? ", skip_zeros" : "");
}

nlohmann::json SpecJson(const v1::QuantizerSpec& spec) {
  nlohmann::json json = {{"calibrator", CalibratorName(spec.calibrator())},
                         {"num_bits", spec.num_bits()},
                         {"unsigned", spec.is_unsigned()},
                         {"axis", nullptr},
                         {"num_bins", spec.num_bins()},
                         {"skip_zeros", spec.skip_zeros()},
                         {"format", std::string(QuantFormatName(spec.format()))}};
  if (spec.has_axis()) json["axis"] = spec.axis();
  return json;
}

// "2048 -> 2233": the histogram's starting and current bins ("2048 -> 0" before data); "-" for
// a max calibrator.
std::string BinsText(const v1::QuantizerStats& q) {
  if (q.spec().calibrator() != v1::CALIBRATOR_HISTOGRAM) return "-";
  return absl::StrCat(q.spec().num_bins(), " -> ", q.bins());
}

std::string AmaxText(const v1::QuantizerAmax& amax) {
  if (amax.amax_size() == 1) return absl::StrFormat("%.6g", amax.amax(0));
  if (amax.amax_size() == 0) return "-";
  const auto [lo, hi] = std::minmax_element(amax.amax().begin(), amax.amax().end());
  return absl::StrFormat("%d ch in [%.4g, %.4g]", amax.amax_size(), *lo, *hi);
}

// `name` padded with spaces to `width` characters: counted in UTF-8 code points, not bytes, so a
// column of names such as 'modèle' stays aligned (printf's %-32s counts bytes).
std::string PadName(const std::string& name, size_t width) {
  size_t characters = 0;
  for (const char c : name) characters += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return characters >= width ? name : name + std::string(width - characters, ' ');
}

}  // namespace

std::string FormatModels(const std::vector<v1::ModelInfo>& models) {
  std::string out = absl::StrFormat("%-32s %10s %5s %s\n", "MODEL", "QUANTIZERS", "ONNX", "AMAX");
  for (const v1::ModelInfo& model : models) {
    absl::StrAppendFormat(&out, "%s %10d %5s %s\n", PadName(model.name(), 32),
                          model.quantizers_size(), model.has_onnx() ? "yes" : "no",
                          model.amax_method().empty() ? "-" : model.amax_method());
  }
  return out;
}

nlohmann::json ModelsJson(const std::vector<v1::ModelInfo>& models) {
  nlohmann::json json = nlohmann::json::array();
  for (const v1::ModelInfo& model : models) json.push_back(ModelInfoJson(model));
  return json;
}

std::string FormatReplicaModels(const std::vector<ReplicaModel>& models) {
  std::string out = absl::StrFormat("%-21s %-32s %10s %5s %s\n", "REPLICA", "MODEL", "QUANTIZERS",
                                    "ONNX", "AMAX");
  for (const auto& [replica, model] : models) {
    absl::StrAppendFormat(&out, "%-21s %s %10d %5s %s\n", replica, PadName(model.name(), 32),
                          model.quantizers_size(), model.has_onnx() ? "yes" : "no",
                          model.amax_method().empty() ? "-" : model.amax_method());
  }
  return out;
}

nlohmann::json ReplicaModelsJson(const std::vector<ReplicaModel>& models) {
  nlohmann::json json = nlohmann::json::array();
  for (const auto& [replica, model] : models) {
    nlohmann::json entry = ModelInfoJson(model);
    entry["replica"] = replica;
    json.push_back(std::move(entry));
  }
  return json;
}

std::string FormatModelInfo(const v1::ModelInfo& info) {
  std::string out;
  absl::StrAppendFormat(&out, "model           %s\n", info.name());
  absl::StrAppendFormat(&out, "onnx            %s\n", info.has_onnx() ? "uploaded" : "none");
  absl::StrAppendFormat(&out, "amax table      %s\n",
                        info.amax_method().empty() ? "none" : info.amax_method());
  absl::StrAppendFormat(&out, "histograms      %s layout\n",
                        HistogramLayoutName(info.histogram_layout()));
  absl::StrAppendFormat(&out, "default input   %s\n", SpecText(info.default_input()));
  absl::StrAppendFormat(&out, "default weight  %s\n", SpecText(info.default_weight()));
  absl::StrAppendFormat(&out, "quantizers      %d\n", info.quantizers_size());
  if (info.quantizers_size() > 0) {
    // BINS: a histogram's bins at the start (num_bins) -> now (growth appends bins, coarsening
    // merges them); CHANNELS: the amax values a max calibrator holds.
    absl::StrAppendFormat(&out, "  %-40s %-10s %4s %-8s %4s %-17s %8s %8s %12s %9s %12s\n",
                          "QUANTIZER", "CALIBRATOR", "BITS", "FORMAT", "AXIS", "BINS (START->NOW)",
                          "CHANNELS", "BATCHES", "ELEMENTS", "NONFINITE", "BYTES");
    for (const v1::QuantizerStats& q : info.quantizers()) {
      absl::StrAppendFormat(
          &out, "  %-40s %-10s %4d %-8s %4s %-17s %8s %8d %12d %9d %12d\n", q.spec().name(),
          CalibratorName(q.spec().calibrator()), q.spec().num_bits(),
          std::string(QuantFormatName(q.spec().format())), AxisText(q.spec()), BinsText(q),
          q.spec().calibrator() == v1::CALIBRATOR_MAX ? absl::StrCat(q.amax_size()) : "-",
          q.batches(), q.elements(), q.nonfinite(), q.bytes());
    }
  }
  if (!info.has_onnx()) {
    absl::StrAppendFormat(&out, "bindings        none (no ONNX model uploaded)\n");
    return out;
  }
  absl::StrAppendFormat(&out,
                        "bindings        %d (quantizer -> ONNX tensor, as export binds them; "
                        "export --map QUANTIZER=TENSOR overrides)\n",
                        info.onnx_bindings_size());
  const std::map<std::string, std::string> bindings(info.onnx_bindings().begin(),
                                                    info.onnx_bindings().end());
  for (const auto& [quantizer, tensor] : bindings) {
    absl::StrAppendFormat(&out, "  %-40s -> %s\n", quantizer, tensor);
  }
  return out;
}

nlohmann::json ModelInfoJson(const v1::ModelInfo& info) {
  nlohmann::json quantizers = nlohmann::json::array();
  for (const v1::QuantizerStats& q : info.quantizers()) {
    nlohmann::json entry = SpecJson(q.spec());
    entry["name"] = q.spec().name();
    entry["batches"] = q.batches();
    entry["elements"] = q.elements();
    entry["nonfinite"] = q.nonfinite();
    entry["bytes"] = q.bytes();
    entry["bins"] = q.bins();
    entry["amax_size"] = q.amax_size();
    quantizers.push_back(entry);
  }
  return {{"name", info.name()},
          {"has_onnx", info.has_onnx()},
          {"amax_method", info.amax_method()},
          {"histogram_layout", HistogramLayoutName(info.histogram_layout())},
          {"default_input", SpecJson(info.default_input())},
          {"default_weight", SpecJson(info.default_weight())},
          {"quantizers", quantizers},
          {"onnx_bindings", std::map<std::string, std::string>(info.onnx_bindings().begin(),
                                                               info.onnx_bindings().end())}};
}

std::string FormatAmaxTable(const v1::AmaxTable& table) {
  std::string out = absl::StrFormat("model %s, method %s\n", table.model(), table.method());
  absl::StrAppendFormat(&out, "%-40s %-10s %-28s %4s %-8s %4s %8s %12s %9s\n", "QUANTIZER",
                        "METHOD", "AMAX", "BITS", "FORMAT", "AXIS", "BATCHES", "ELEMENTS",
                        "NONFINITE");
  for (const v1::QuantizerAmax& q : table.quantizers()) {
    absl::StrAppendFormat(
        &out, "%-40s %-10s %-28s %4d %-8s %4s %8d %12d %9d\n", q.name(), q.method(), AmaxText(q),
        q.num_bits(), std::string(QuantFormatName(q.format())),
        q.has_axis() ? absl::StrCat(q.axis()) : "-", q.batches(), q.elements(), q.nonfinite());
  }
  return out;
}

std::string FormatHistogram(const v1::Histogram& histogram, int rows) {
  const int bins = histogram.counts_size();
  std::string out = absl::StrFormat(
      "model %s, quantizer %s\nbins %d, range [0, %.6g], abs_max %.6g, total %d, nonfinite %d\n",
      histogram.model(), histogram.quantizer(), bins,
      histogram.edges_size() > 0 ? histogram.edges(histogram.edges_size() - 1) : 0.0f,
      histogram.abs_max(), histogram.total(), histogram.nonfinite());
  if (bins == 0 || histogram.edges_size() != bins + 1 || rows <= 0) return out;
  const int group = (bins + rows - 1) / rows;
  const int shown_rows = (bins + group - 1) / group;
  const int last = bins - (shown_rows - 1) * group;
  absl::StrAppendFormat(&out, "%d %s of %d %s each%s, counts summed per row\n", shown_rows,
                        shown_rows == 1 ? "row" : "rows", group, group == 1 ? "bin" : "bins",
                        last == group ? "" : absl::StrCat(" (the last row ", last, ")"));
  std::vector<uint64_t> sums;
  for (int start = 0; start < bins; start += group) {
    uint64_t sum = 0;
    for (int i = start; i < std::min(bins, start + group); ++i) sum += histogram.counts(i);
    sums.push_back(sum);
  }
  const uint64_t peak = std::max<uint64_t>(1, *std::max_element(sums.begin(), sums.end()));
  constexpr int kWidth = 50;
  absl::StrAppendFormat(&out, "%-13s %-25s %12s\n", "BINS", "EDGES OF |x|", "COUNT");
  for (size_t r = 0; r < sums.size(); ++r) {
    const int lo = static_cast<int>(r) * group;
    const int hi = std::min(bins, lo + group);
    const int bar = static_cast<int>(sums[r] * kWidth / peak);
    // The last bin holds its upper edge (values equal to the range's end), as numpy's does.
    const char close = hi == bins ? ']' : ')';
    absl::StrAppendFormat(
        &out, "%-13s %-25s %12d %s\n", absl::StrFormat("[%d, %d)", lo, hi),
        absl::StrFormat("[%.6g, %.6g%c", histogram.edges(lo), histogram.edges(hi), close), sums[r],
        std::string(bar, '#'));
  }
  return out;
}

nlohmann::json HistogramJson(const v1::Histogram& histogram) {
  return {{"model", histogram.model()},
          {"quantizer", histogram.quantizer()},
          {"counts", std::vector<uint64_t>(histogram.counts().begin(), histogram.counts().end())},
          {"edges", std::vector<float>(histogram.edges().begin(), histogram.edges().end())},
          {"abs_max", histogram.abs_max()},
          {"total", histogram.total()},
          {"nonfinite", histogram.nonfinite()}};
}

std::string FormatExplain(const std::vector<ExplainEntry>& entries) {
  if (entries.empty()) return "explain: the export considered no node input\n";
  std::vector<std::array<std::string, 8>> rows;
  rows.push_back({"NODE", "OP", "IN", "TENSOR", "DECISION", "RULE", "QUANTIZER", "REASON"});
  for (const ExplainEntry& e : entries) {
    rows.push_back({e.node, e.op_type, absl::StrCat(e.input), e.tensor, e.decision, e.rule,
                    e.quantizer.empty() ? "-" : e.quantizer, e.reason});
  }
  std::array<size_t, 7> width{};
  for (const auto& row : rows) {
    for (size_t c = 0; c < width.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t c = 0; c < width.size(); ++c) {
      absl::StrAppend(&out, row[c], std::string(width[c] - row[c].size() + 2, ' '));
    }
    absl::StrAppend(&out, row[7], "\n");
  }
  return out;
}

}  // namespace qcal::cli
