// What the dashboard reads (server/dashboard/): watching a model changes nothing. Peek does not
// mark it used for --model-ttl, QuantizerAmaxOf stores no table and charges only while it runs,
// and Metrics::IngestOf creates no series.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/core/metrics.h"
#include "server/core/model.h"
#include "server/core/model_registry.h"
#include "server/core/state_budget.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

absl::Status Record(Model& model, const std::string& quantizer, std::vector<int64_t> shape,
                    std::vector<float> values) {
  return model.Record(quantizer, shape, values, static_cast<int64_t>(values.size() * 4)).status();
}

TEST(WatchTest, PeekFindsAModelWithoutMarkingItUsed) {
  ModelRegistry registry;
  ASSERT_TRUE(registry.Create({.name = "a"}).ok());
  std::shared_ptr<Model> model = *registry.Find("a");
  model->Touch(absl::FromUnixSeconds(1000));
  absl::StatusOr<std::shared_ptr<Model>> peeked = registry.Peek("a");
  ASSERT_TRUE(peeked.ok()) << peeked.status();
  EXPECT_EQ(peeked->get(), model.get());
  EXPECT_EQ(model->last_used_unix_seconds(), 1000);
  ASSERT_TRUE(registry.Find("a").ok());
  EXPECT_GT(model->last_used_unix_seconds(), 1000);  // Find does mark it.

  const absl::Status missing = registry.Peek("b").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("unknown model 'b'"));
}

TEST(WatchTest, QuantizerAmaxOfIsComputeAmaxsValueAndStoresNothing) {
  StateBudget budget(int64_t{1} << 30);
  ModelLimits limits;
  limits.state_budget = &budget;
  absl::StatusOr<std::shared_ptr<Model>> model = Model::Create({.name = "m", .limits = limits});
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> values(4096);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 97) * 0.25f;
  ASSERT_TRUE(Record(**model, "a._input_quantizer", {4096}, values).ok());
  ASSERT_TRUE(Record(**model, "w._weight_quantizer", {2, 2}, {1, -3, 0.5, 2}).ok());
  const int64_t held = budget.used_bytes();

  for (const std::string method : {"max", "entropy", "mse", "percentile"}) {
    absl::StatusOr<QuantizerAmax> one =
        (*model)->QuantizerAmaxOf("a._input_quantizer", {.method = method});
    ASSERT_TRUE(one.ok()) << method << ": " << one.status();
    EXPECT_EQ((*model)->Info().amax_method, "") << "a table was stored";
    absl::StatusOr<AmaxTableForms> table = (*model)->ComputeAmax({.params = {.method = method}});
    ASSERT_TRUE(table.ok()) << table.status();
    EXPECT_EQ(one->amax, table->table.quantizers.at("a._input_quantizer").amax) << method;
    (*model)->Reset();
    ASSERT_TRUE(Record(**model, "a._input_quantizer", {4096}, values).ok());
    ASSERT_TRUE(Record(**model, "w._weight_quantizer", {2, 2}, {1, -3, 0.5, 2}).ok());
  }
  EXPECT_EQ(budget.used_bytes(), held);  // The search's copy was given back.

  absl::StatusOr<QuantizerAmax> weight =
      (*model)->QuantizerAmaxOf("w._weight_quantizer", {.method = "entropy"});
  ASSERT_TRUE(weight.ok()) << weight.status();
  EXPECT_EQ(weight->amax, (std::vector<float>{3, 2}));  // A max calibrator: its max per channel.
  EXPECT_EQ((*model)->QuantizerAmaxOf("x._input_quantizer", {.method = "max"}).status().code(),
            absl::StatusCode::kNotFound);
  const std::function<bool()> cancelled = [] { return true; };
  EXPECT_EQ((*model)
                ->QuantizerAmaxOf("a._input_quantizer", {.method = "entropy"}, &cancelled)
                .status()
                .code(),
            absl::StatusCode::kCancelled);
}

TEST(WatchTest, IngestOfReadsTheCountersAndCreatesNoSeries) {
  Metrics metrics;
  EXPECT_EQ(metrics.IngestOf("m").bytes, 0);
  metrics.AddBatches("m", {.batches = 2, .elements = 8, .nonfinite = 0, .bytes = 32});
  metrics.AddBatches("m", {.batches = 1, .elements = 4, .nonfinite = 0, .bytes = 16});
  EXPECT_EQ(metrics.IngestOf("m").bytes, 48);
  EXPECT_EQ(metrics.IngestOf("m").batches, 3);
  EXPECT_EQ(metrics.IngestOf("other").batches, 0);
  for (const auto& family : metrics.registry()->Collect()) {
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) EXPECT_NE(label.value, "other") << family.name;
    }
  }
}

}  // namespace
}  // namespace qcal::server
