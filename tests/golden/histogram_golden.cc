// histogram_calibrator.json: HistogramCalibrator collect (torch_hist=True) and compute_amax.
#include <algorithm>
#include <bit>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "kernels/amax_search.h"
#include "kernels/histogram_amax.h"
#include "kernels/mse_amax_internal.h"
#include "tests/golden/golden_families.h"

namespace qcal::golden {
namespace {

using kernels::AmaxChoice;
using kernels::AmaxMethod;
using kernels::Histogram;
using kernels::SearchOptions;

constexpr int64_t kEdgeUlps = 2;   // calib_bin_edges and amax
constexpr double kKlRel = 1e-9;    // divergences
constexpr double kMseRel = 1e-5;   // mse_float32
constexpr double kCdfRel = 1e-12;  // cdf values: the same double arithmetic as numpy

// Relative closeness with an absolute floor for values the reference printed as exactly 0.
bool Close(double actual, double expected, double rel, double abs_floor) {
  if (RelClose(actual, expected, rel)) return true;
  return std::abs(actual - expected) <= abs_floor;
}

SearchOptions SearchOptionsFor(const Json& params, const Json& kwargs) {
  SearchOptions o;
  o.num_bits = params.at("num_bits").get<int>();
  o.is_unsigned = params.at("unsigned").get<bool>();
  o.start_bin = kwargs.value("start_bin", 128);  // compute_amax's defaults
  o.stride = kwargs.value("stride", 1);
  return o;
}

double PercentileFor(const Json& kwargs) {
  return kwargs.contains("percentile") ? ToDouble(kwargs["percentile"])
                                       : kernels::kDefaultPercentile;
}

bool Contains(const Json& list, int64_t index) {
  return std::any_of(list.begin(), list.end(),
                     [&](const Json& v) { return v.get<int64_t>() == index; });
}

// Detailed checks of one search result against a compute_amax entry, on counts/edges.
void CheckChoice(CaseReport& report, const std::string& what, const AmaxChoice& choice,
                 AmaxMethod method, std::span<const uint64_t> counts, std::span<const float> edges,
                 const SearchOptions& options, const Json& entry) {
  const int64_t want_index = entry.at("index").get<int64_t>();
  const bool listed_tie =
      entry.contains("tie_indices") ? Contains(entry["tie_indices"], choice.index) : false;
  if (choice.index != want_index && !listed_tie) {
    report.Fail(absl::StrCat(what, ": index ", choice.index, ", expected ", want_index,
                             entry.contains("tie_indices")
                                 ? absl::StrCat(" or a tie in ", entry["tie_indices"].dump())
                                 : ""));
    return;
  }
  if (choice.index == want_index) {
    const float want_amax = ToFloat(entry.at("amax"));
    if (UlpDistance(choice.amax, want_amax) > kEdgeUlps) {
      report.Fail(absl::StrCat(what, ": amax ", choice.amax, ", expected ", want_amax));
    }
  } else {
    // A listed tie: amax must be the edge (or center) at qcal's own index.
    const float at_index = method == AmaxMethod::kMse
                               ? (edges[choice.index] + edges[choice.index + 1]) / 2.0f
                               : edges[choice.index];
    if (choice.amax != at_index) {
      report.Fail(absl::StrCat(what, ": amax ", choice.amax, " is not the value at index ",
                               choice.index, " (", at_index, ")"));
    }
  }

  if (method == AmaxMethod::kEntropy) {
    const auto divergences = kernels::KlDivergences(counts, options);
    if (!divergences.ok()) {
      report.Fail(absl::StrCat(what, ": ", divergences.status().ToString()));
      return;
    }
    const int64_t nan = std::count_if(divergences->begin(), divergences->end(),
                                      [](double d) { return std::isnan(d); });
    const int64_t inf = std::count_if(divergences->begin(), divergences->end(),
                                      [](double d) { return std::isinf(d); });
    if (static_cast<int64_t>(divergences->size()) != entry.at("num_candidates").get<int64_t>() ||
        nan != entry.at("num_nan_divergences").get<int64_t>() ||
        inf != entry.at("num_inf_divergences").get<int64_t>()) {
      report.Fail(absl::StrCat(what, ": ", divergences->size(), " candidates, ", nan, " NaN, ", inf,
                               " inf; expected ", entry["num_candidates"].dump(), ", ",
                               entry["num_nan_divergences"].dump(), ", ",
                               entry["num_inf_divergences"].dump()));
    }
    if (entry.contains("min_divergence") &&
        !Close(choice.score, ToDouble(entry["min_divergence"]), kKlRel, 1e-12)) {
      report.Fail(absl::StrCat(what, ": min divergence ", choice.score, ", expected ",
                               entry["min_divergence"].dump()));
    }
    if (entry.contains("divergences")) {
      const Json& want = entry["divergences"];
      for (size_t k = 0; k < want.size() && k < divergences->size(); ++k) {
        if (!Close((*divergences)[k], ToDouble(want[k]), kKlRel, 1e-12)) {
          report.Fail(absl::StrCat(what, ": divergence of candidate ", k, " = ", (*divergences)[k],
                                   ", expected ", want[k].dump()));
          break;
        }
      }
    }
  } else if (method == AmaxMethod::kMse) {
    const auto errors = kernels::MseErrors(counts, edges, options);
    if (!errors.ok()) {
      report.Fail(absl::StrCat(what, ": ", errors.status().ToString()));
      return;
    }
    // The bounded search must choose what scoring every candidate one by one chooses, bits
    // and all (kernels/mse_amax.cc).
    const auto quadratic = kernels::internal::MseAmaxQuadratic(counts, edges, options);
    if (!quadratic.ok() || quadratic->index != choice.index ||
        std::bit_cast<uint32_t>(quadratic->amax) != std::bit_cast<uint32_t>(choice.amax) ||
        std::bit_cast<uint64_t>(quadratic->score) != std::bit_cast<uint64_t>(choice.score)) {
      report.Fail(absl::StrCat(what, ": bounded mse search chose ", choice.index, " (",
                               choice.score, "), the one-by-one search ",
                               quadratic.ok()
                                   ? absl::StrCat(quadratic->index, " (", quadratic->score, ")")
                                   : quadratic.status().ToString()));
    }
    if (!Close(choice.score, ToDouble(entry.at("min_mse_float32")), kMseRel, 1e-20)) {
      report.Fail(absl::StrCat(what, ": min mse ", choice.score, ", expected ",
                               entry["min_mse_float32"].dump()));
    }
    if (entry.contains("mse_float32")) {
      const Json& want = entry["mse_float32"];
      if (want.size() != errors->size()) {
        report.Fail(
            absl::StrCat(what, ": ", errors->size(), " mse candidates, expected ", want.size()));
      }
      for (size_t k = 0; k < want.size() && k < errors->size(); ++k) {
        if (!Close((*errors)[k], ToDouble(want[k]), kMseRel, 1e-20)) {
          report.Fail(absl::StrCat(what, ": mse of candidate ", k, " = ", (*errors)[k],
                                   ", expected ", want[k].dump()));
          break;
        }
      }
    }
  } else if (method == AmaxMethod::kPercentile) {
    const Json& cdf =
        entry.at("cdf_at_index").is_null() ? entry.at("cdf_last") : entry.at("cdf_at_index");
    if (!Close(choice.score, ToDouble(cdf), kCdfRel, 0.0)) {
      report.Fail(absl::StrCat(what, ": cdf ", choice.score, ", expected ", cdf.dump()));
    }
  }
}

// Checks one compute_amax entry given a way to run the search.
template <typename Search>
void CheckEntry(CaseReport& report, const std::string& what, const Json& params, const Json& entry,
                std::span<const uint64_t> counts, std::span<const float> edges, Search search) {
  const auto method = kernels::ParseAmaxMethod(entry.at("method").get<std::string>());
  if (!method.ok()) {
    if (entry.contains("error")) {
      ExpectMappedError(report, what, entry["error"], method.status());
    } else {
      report.Fail(absl::StrCat(what, ": ", method.status().ToString()));
    }
    return;
  }
  const Json& kwargs = entry.at("kwargs");
  const SearchOptions options = SearchOptionsFor(params, kwargs);
  const absl::StatusOr<AmaxChoice> choice = search(*method, options, PercentileFor(kwargs));
  if (entry.contains("error")) {
    ExpectMappedError(report, what, entry["error"], choice.status());
    return;
  }
  if (entry.at("amax").is_null()) {
    // The reference returns None without data; qcal says so with FAILED_PRECONDITION.
    if (choice.status().code() != absl::StatusCode::kFailedPrecondition) {
      report.Fail(absl::StrCat(what, ": reference returned None, qcal ",
                               choice.ok() ? "returned an amax" : choice.status().ToString()));
    }
    return;
  }
  if (!choice.ok()) {
    report.Fail(absl::StrCat(what, ": ", choice.status().ToString()));
    return;
  }
  CheckChoice(report, what, *choice, *method, counts, edges, options, entry);
}

std::string EntryName(const Json& entry, size_t k) {
  return absl::StrCat("compute_amax[", k, "] ", entry.at("method").get<std::string>(), " ",
                      entry.at("kwargs").dump());
}

// torch_hist=False (optional in the README): qcal does not reproduce numpy's collection, so
// only the searches run, on the recorded calib_hist and calib_bin_edges. As in the reference,
// an entropy search leaves counts[0] replaced by counts[1] for the searches after it.
CaseReport RunNumpyPathCase(const Json& golden_case) {
  CaseReport report;
  const Json& expected = golden_case.at("expected");
  std::vector<uint64_t> counts = expected.at("calib_hist").get<std::vector<uint64_t>>();
  std::vector<float> edges;
  for (const Json& e : expected.at("calib_bin_edges")) edges.push_back(ToFloat(e));
  const Json& entries = expected.at("compute_amax");
  for (size_t k = 0; k < entries.size(); ++k) {
    const std::vector<uint64_t> snapshot = counts;
    CheckEntry(report, EntryName(entries[k], k), golden_case.at("params"), entries[k], snapshot,
               edges, [&](AmaxMethod method, const SearchOptions& options, double percentile) {
                 switch (method) {
                   case AmaxMethod::kEntropy:
                     if (counts.size() > 1) counts[0] = counts[1];
                     return kernels::EntropyAmax(snapshot, edges, options);
                   case AmaxMethod::kMse:
                     return kernels::MseAmax(snapshot, edges, options);
                   case AmaxMethod::kPercentile:
                     return kernels::PercentileAmax(snapshot, edges, percentile);
                   case AmaxMethod::kMax:
                     break;
                 }
                 return absl::StatusOr<AmaxChoice>(absl::InvalidArgumentError("not a search"));
               });
  }
  return report;
}

void CheckAfterBatch(CaseReport& report, size_t batch, const Json& after, const Histogram& h) {
  const std::string what = absl::StrCat("after batch ", batch);
  const auto bins = static_cast<int64_t>(h.Counts().size());
  if (bins != after.at("num_bins").get<int64_t>() || bins != after.at("hist_len").get<int64_t>() ||
      static_cast<int64_t>(h.Edges().size()) != after.at("edges_len").get<int64_t>() ||
      h.total() != after.at("hist_total").get<uint64_t>()) {
    report.Fail(absl::StrCat(what, ": ", bins, " bins, ", h.Edges().size(), " edges, total ",
                             h.total(), "; expected ", after.dump()));
    return;
  }
  if (UlpDistance(h.Edges()[1], ToFloat(after.at("edge_1"))) > kEdgeUlps ||
      UlpDistance(h.Edges().back(), ToFloat(after.at("edge_last"))) > kEdgeUlps) {
    report.Fail(absl::StrCat(what, ": edges[1] ", h.Edges()[1], ", last edge ", h.Edges().back(),
                             "; expected ", after.dump()));
  }
}

}  // namespace

Histogram::Options HistogramOptions(const Json& params) {
  Histogram::Options options;
  options.num_bins = params.at("num_bins").get<int>();
  options.skip_zeros = params.at("skip_zeros").get<bool>();
  if (!params.at("axis").is_null()) options.axis = params.at("axis").get<int>();
  return options;
}

void CheckHistogramState(CaseReport& report, const Json& expected, const Histogram& hist) {
  if (expected.at("calib_hist").is_null()) {
    if (!hist.Counts().empty()) report.Fail("reference has no histogram, qcal has bins");
    return;
  }
  const auto want = expected.at("calib_hist").get<std::vector<uint64_t>>();
  if (!std::equal(want.begin(), want.end(), hist.Counts().begin(), hist.Counts().end())) {
    size_t k = 0;
    while (k < want.size() && k < hist.Counts().size() && want[k] == hist.Counts()[k]) ++k;
    report.Fail(absl::StrCat("calib_hist differs (", hist.Counts().size(), " bins, expected ",
                             want.size(), ") first at bin ", k));
  }
  const Json& edges = expected.at("calib_bin_edges");
  if (edges.size() != hist.Edges().size()) {
    report.Fail(
        absl::StrCat("calib_bin_edges: ", hist.Edges().size(), " edges, expected ", edges.size()));
    return;
  }
  for (size_t k = 0; k < edges.size(); ++k) {
    if (UlpDistance(hist.Edges()[k], ToFloat(edges[k])) > kEdgeUlps) {
      report.Fail(absl::StrCat("calib_bin_edges[", k, "] = ", hist.Edges()[k], ", expected ",
                               edges[k].dump()));
      return;
    }
  }
}

void CheckComputeAmax(CaseReport& report, const Histogram& hist, const Json& params,
                      const Json& entry, const std::string& what) {
  CheckEntry(report, what, params, entry, hist.Counts(), hist.Edges(),
             [&](AmaxMethod method, const SearchOptions& options, double percentile) {
               return kernels::HistogramAmax(hist, method, options, percentile);
             });
}

absl::StatusOr<float> HistogramAmaxFor(const Histogram& hist, const Json& params,
                                       const Json& entry) {
  const auto method = kernels::ParseAmaxMethod(entry.at("method").get<std::string>());
  if (!method.ok()) return method.status();
  const Json& kwargs = entry.at("kwargs");
  const auto choice = kernels::HistogramAmax(hist, *method, SearchOptionsFor(params, kwargs),
                                             PercentileFor(kwargs));
  if (!choice.ok()) return choice.status();
  return choice->amax;
}

CaseReport RunHistogramCase(const Json& golden_case) {
  const Json& params = golden_case.at("params");
  if (!params.at("torch_hist").get<bool>()) return RunNumpyPathCase(golden_case);
  CaseReport report;
  const Json& expected = golden_case.at("expected");
  auto created = Histogram::Create(HistogramOptions(params));
  if (expected.value("error_at", "") == "constructor") {
    ExpectMappedError(report, "constructor", expected.at("error"), created.status());
    return report;
  }
  if (!created.ok()) {
    ExpectOk(report, "constructor", created.status());
    return report;
  }
  Histogram& hist = *created;
  const Json& error_at_json = expected.value("error_at_batch", Json());
  const int error_at = error_at_json.is_null() ? -1 : error_at_json.get<int>();
  const Json& batches = golden_case.at("batches");
  for (size_t b = 0; b < batches.size(); ++b) {
    const GoldenTensor batch = ToTensor(batches[b]);
    const auto stats = hist.Collect(batch.data);
    const std::string what = absl::StrCat("collect batch ", b);
    if (static_cast<int>(b) == error_at) {
      ExpectMappedError(report, what, expected.at("error"), stats.status());
      break;
    }
    ExpectOk(report, what, stats.status());
    if (b < expected.at("after_each_batch").size()) {
      CheckAfterBatch(report, b, expected["after_each_batch"][b], hist);
    }
  }
  CheckHistogramState(report, expected, hist);
  const Json& entries = expected.at("compute_amax");
  for (size_t k = 0; k < entries.size(); ++k) {
    CheckComputeAmax(report, hist, params, entries[k], EntryName(entries[k], k));
  }
  return report;
}

}  // namespace qcal::golden
