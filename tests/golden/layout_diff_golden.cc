// The mergeable layout against the reference layout on the golden histogram cases: both collect
// the same batches, and every compute_amax entry (plus max) is computed on each. Prints a table
// and a per-method summary (README, "Same data, same amax", quotes it), and checks:
// - max: equal (both are the exact max of |x|);
// - percentile: each layout's amax is the lower edge of the bin where the cdf reaches p (the
//   last edge when the rounded cdf never reaches p = 100), so it lies within one bin width of
//   the order statistics around p * n: in [v(floor(pn) - 1) - width, v(ceil(pn)) + width]
//   (sorted |x|, 0-based). Not simply "within one bin of each other": when
//   p * n is an integer the double cdf may reach p one value early or late, and between those two
//   values there can be many empty bins (gaussian_7bit at 99.9: 11 bins);
// - entropy and mse choose among bin edges and centers by a score whose shape depends on the
//   bins, so no bound follows from the bin width alone (on 64 bins a stride-2 entropy search
//   moves by 17%). Measured on these cases: entropy <= 17.2%, mse <= 3.6% per row, medians
//   4.4e-4 and 3.7e-4. Asserted: entropy <= 20% and mse <= 5% per row, and every method's
//   median <= 1e-3, which a systematic error (a wrong exponent, a shifted bin) would break.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/histogram.h"
#include "tests/golden/golden_dir.h"
#include "tests/golden/golden_families.h"
#include "tests/golden/golden_values.h"

namespace qcal::golden {
namespace {

using kernels::Histogram;
using kernels::HistogramLayout;

constexpr double kEntropyRowBound = 0.20;
constexpr double kMseRowBound = 0.05;
constexpr double kMedianBound = 1e-3;

struct Row {
  std::string name;
  std::string method;
  float reference = 0.0f;
  float mergeable = 0.0f;
  // |difference| / reference amax, and in bin widths of the coarser layout.
  double relative = 0.0;
  double in_bins = 0.0;
};

// A case's batches through a histogram of `layout`; false when a batch is refused (the
// reference's error cases are not compared).
bool CollectAll(const Json& golden_case, Histogram& hist) {
  for (const Json& batch : golden_case.at("batches")) {
    const GoldenTensor tensor = ToTensor(batch);
    if (!hist.Collect(tensor.data).ok()) return false;
  }
  return true;
}

std::string MethodName(const Json& entry) {
  std::string name = entry.at("method").get<std::string>();
  for (const auto& [key, value] : entry.at("kwargs").items()) {
    absl::StrAppend(&name, " ", key, "=", value.dump());
  }
  return name;
}

// The finite |x| a histogram counts (zeros left out with skip_zeros), sorted.
std::vector<float> SortedAbs(const Json& golden_case, bool skip_zeros) {
  std::vector<float> v;
  for (const Json& batch : golden_case.at("batches")) {
    for (const float x : ToTensor(batch).data) {
      if (std::isfinite(x) && !(skip_zeros && x == 0.0f)) v.push_back(std::abs(x));
    }
  }
  std::sort(v.begin(), v.end());
  return v;
}

// The percentile check above, for one layout's amax.
bool PercentileInRange(const std::vector<float>& sorted, double percentile, float amax,
                       float width) {
  const double target = percentile / 100.0 * static_cast<double>(sorted.size());
  const auto at = [&](double i) {
    return sorted[static_cast<size_t>(std::clamp<double>(i, 0, sorted.size() - 1))];
  };
  const double lo = static_cast<double>(at(std::floor(target) - 1)) - width;
  const double hi = static_cast<double>(at(std::ceil(target))) + width;
  return amax >= lo && amax <= hi;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

TEST(golden, MergeableLayoutAmaxAgainstTheReferenceLayout) {
  const auto dir = GoldenDirFromEnvironment(QCAL_SOURCE_DIR);
  ASSERT_TRUE(dir.ok()) << dir.status();
  const auto doc = LoadGoldenFile(*dir, "histogram_calibrator.json");
  ASSERT_TRUE(doc.ok()) << doc.status();

  std::vector<Row> rows;
  for (const Json& golden_case : doc->at("cases")) {
    const Json& params = golden_case.at("params");
    if (!params.at("torch_hist").get<bool>() || !params.at("axis").is_null()) continue;
    Histogram::Options options = HistogramOptions(params);
    auto reference = Histogram::Create(options);
    options.layout = HistogramLayout::kMergeable;
    auto mergeable = Histogram::Create(options);
    if (!reference.ok() || !mergeable.ok()) continue;
    if (!CollectAll(golden_case, *reference) || !CollectAll(golden_case, *mergeable)) continue;
    if (reference->Counts().empty() || mergeable->Counts().empty()) continue;  // no data
    const double width = std::max(reference->Edges()[1], mergeable->Edges()[1]);
    const std::string name = golden_case.at("name").get<std::string>();
    const std::vector<float> sorted = SortedAbs(golden_case, options.skip_zeros);
    const auto add = [&](const std::string& method, float r, float m) {
      const double diff = std::abs(static_cast<double>(r) - m);
      rows.push_back({name, method, r, m, r > 0.0f ? diff / r : diff, diff / width});
    };
    add("max", reference->abs_max(), mergeable->abs_max());
    EXPECT_EQ(reference->abs_max(), mergeable->abs_max()) << name;
    for (const Json& entry : golden_case.at("expected").at("compute_amax")) {
      if (entry.contains("error") || entry.at("amax").is_null()) continue;
      const absl::StatusOr<float> r = HistogramAmaxFor(*reference, params, entry);
      const absl::StatusOr<float> m = HistogramAmaxFor(*mergeable, params, entry);
      // Arguments qcal refuses on purpose (deviations.h) are refused in both layouts.
      EXPECT_EQ(m.status().code(), r.status().code()) << name << " " << MethodName(entry);
      if (!r.ok() || !m.ok()) continue;
      const std::string method = MethodName(entry);
      add(method, *r, *m);
      if (entry.at("method") == "percentile") {
        const double p = entry.at("kwargs").value("percentile", 99.99);
        EXPECT_TRUE(PercentileInRange(sorted, p, *r, reference->Edges()[1]))
            << name << " " << method << ": reference layout " << *r;
        EXPECT_TRUE(PercentileInRange(sorted, p, *m, mergeable->Edges()[1]))
            << name << " " << method << ": mergeable layout " << *m;
      } else if (entry.at("method") == "entropy") {
        EXPECT_LE(rows.back().relative, kEntropyRowBound) << name << " " << method;
      } else if (entry.at("method") == "mse") {
        EXPECT_LE(rows.back().relative, kMseRowBound) << name << " " << method;
      }
    }
  }
  ASSERT_GT(rows.size(), 100u);

  std::printf("%-34s %-28s %14s %14s %10s %8s\n", "case", "method", "reference", "mergeable",
              "rel diff", "bins");
  std::map<std::string, std::vector<double>> by_method;
  for (const Row& row : rows) {
    std::printf("%-34s %-28s %14.8g %14.8g %10.3e %8.2f\n", row.name.c_str(), row.method.c_str(),
                row.reference, row.mergeable, row.relative, row.in_bins);
    const std::string family = row.method.substr(0, row.method.find(' '));
    by_method[family].push_back(row.relative);
  }
  std::printf("\nsummary (relative difference |mergeable - reference| / reference):\n");
  std::printf("%-12s %6s %12s %12s\n", "method", "rows", "median", "max");
  for (const auto& [method, diffs] : by_method) {
    std::printf("%-12s %6zu %12.3e %12.3e\n", method.c_str(), diffs.size(), Median(diffs),
                *std::max_element(diffs.begin(), diffs.end()));
    EXPECT_LE(Median(diffs), kMedianBound) << method;
  }
  std::fflush(stdout);
}

}  // namespace
}  // namespace qcal::golden
