// The in-flight call count that QcalServer::Shutdown waits on.
#include "server/core/metrics.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace qcal::server
