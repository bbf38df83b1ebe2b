// The in-flight call count that QcalServer::Shutdown waits on.
#include "server/core/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "prometheus/text_serializer.h"

namespace qcal::server {
namespace {

// Shutdown waits for running calls, not for client connections that are merely open (gRPC's own
// Shutdown(deadline) waited the full 5 s for those): the count must follow RpcTimer exactly.
TEST(MetricsTest, RpcTimersCountTheCallsRunning) {
  Metrics metrics;
  EXPECT_EQ(metrics.rpcs_in_flight(), 0);
  {
    RpcTimer first(metrics, "Record");
    EXPECT_EQ(metrics.rpcs_in_flight(), 1);
    {
      RpcTimer second(metrics, "GetModel");
      EXPECT_EQ(metrics.rpcs_in_flight(), 2);
    }
    EXPECT_EQ(metrics.rpcs_in_flight(), 1);
  }
  EXPECT_EQ(metrics.rpcs_in_flight(), 0);
}

std::string Scrape(const Metrics& metrics) {
  return prometheus::TextSerializer().Serialize(metrics.registry()->Collect());
}

// The "Record errors" alert reads failed calls by method; a code name, not a number, so that a
// rule can say code="NOT_FOUND".
TEST(MetricsTest, RpcErrorsCountByMethodAndCodeName) {
  Metrics metrics;
  metrics.RpcFailed("Record", absl::StatusCode::kNotFound);
  metrics.RpcFailed("Record", absl::StatusCode::kNotFound);
  metrics.RpcFailed("GetModel", absl::StatusCode::kInvalidArgument);
  const std::string text = Scrape(metrics);
  EXPECT_THAT(text,
              testing::HasSubstr("qcal_rpc_errors_total{code=\"NOT_FOUND\",method=\"Record\"} 2"));
  EXPECT_THAT(text, testing::HasSubstr("qcal_rpc_errors_total{code=\"INVALID_ARGUMENT\","
                                       "method=\"GetModel\"} 1"));
}

TEST(MetricsTest, QuantizersAreReadFromTheHeldSourceAtEachScrape) {
  Metrics metrics;
  int64_t quantizers = 3;
  metrics.SetHeldSource(
      [&quantizers] { return Metrics::HeldReading{.models = 1, .quantizers = quantizers}; });
  EXPECT_THAT(Scrape(metrics), testing::HasSubstr("\nqcal_quantizers 3\n"));
  quantizers = 5;
  EXPECT_THAT(Scrape(metrics), testing::HasSubstr("\nqcal_quantizers 5\n"));
  metrics.SetHeldSource(nullptr);
}

}  // namespace
}  // namespace qcal::server
