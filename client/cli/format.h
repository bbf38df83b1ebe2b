// How `qcal` prints server answers: human-readable tables and JSON documents.
#ifndef QCAL_CLIENT_CLI_FORMAT_H_
#define QCAL_CLIENT_CLI_FORMAT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qcal/client.h"
#include "qcal/v1/calibration.pb.h"

namespace qcal::cli {

// One line per model: name, quantizer count, whether an ONNX is uploaded, amax method.
std::string FormatModels(const std::vector<v1::ModelInfo>& models);
nlohmann::json ModelsJson(const std::vector<v1::ModelInfo>& models);

// `qcal models --all`: a model and the replica (address) it was listed by.
struct ReplicaModel {
  std::string replica;
  v1::ModelInfo info;
};
// As FormatModels, with the replica first on each line.
std::string FormatReplicaModels(const std::vector<ReplicaModel>& models);
// ModelsJson's objects, each with "replica" added.
nlohmann::json ReplicaModelsJson(const std::vector<ReplicaModel>& models);

// A model's histogram layout, defaults, per-quantizer statistics (a histogram's starting and
// current bins, a max calibrator's channel count) and, with an uploaded ONNX model, its "bindings"
// section.
std::string FormatModelInfo(const v1::ModelInfo& info);
// {"name", "has_onnx", "amax_method", "histogram_layout" ("mergeable", "reference", or
//  "unspecified" from a server without layouts), "default_input", "default_weight",
//  "quantizers": [{"name", "calibrator", "num_bits", "unsigned", "axis", "num_bins" (at the
//                  start), "skip_zeros", "batches", "elements", "nonfinite", "bytes", "bins"
//                  (now), "amax_size", "format" ("int" or "fp8_e4m3")}],
//  "onnx_bindings": {quantizer: ONNX tensor}}
nlohmann::json ModelInfoJson(const v1::ModelInfo& info);

// One row per quantizer: name, method, amax (per-channel: count, min and max), bits, format
// ("int" or "fp8_e4m3"), axis, batches, elements, non-finite values.
std::string FormatAmaxTable(const v1::AmaxTable& table);

// Summary lines, then at most `rows` coarse bars over [0, last edge]: the bins summed in groups of
// ceil(bins / rows), each row labelled with its bin range [first, end) and edge range, under a
// line saying how many bins a row sums ("16 rows of 128 bins each").
std::string FormatHistogram(const v1::Histogram& histogram, int rows = 16);
// {"model", "quantizer", "counts": [...], "edges": [...], "abs_max", "total", "nonfinite"}
nlohmann::json HistogramJson(const v1::Histogram& histogram);

// `qcal export --explain`: one row per node input the export considered, columns NODE, OP, IN
// (input index), TENSOR, DECISION, RULE, QUANTIZER ("-" when none), aligned to the widest value,
// then REASON (unaligned, last, so long reasons do not widen the table). Empty entries: a line
// saying so.
std::string FormatExplain(const std::vector<ExplainEntry>& entries);

}  // namespace qcal::cli

#endif  // QCAL_CLIENT_CLI_FORMAT_H_
