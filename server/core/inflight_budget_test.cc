#include "server/core/inflight_budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "absl/time/clock.h"
#include "server/core/metrics.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

// A call whose cancellation and deadline the test sets.
class FakeCall final : public CallControl {
 public:
  explicit FakeCall(absl::Time deadline = absl::InfiniteFuture()) : deadline_(deadline) {}
  bool Cancelled() const override { return cancelled_.load(); }
  absl::Time Deadline() const override { return deadline_; }
  void Cancel() { cancelled_.store(true); }

 private:
  const absl::Time deadline_;
  std::atomic<bool> cancelled_{false};
};

// Polls `done` for up to 30 s (a generous bound: it is not a timing assertion).
template <typename Done>
bool Eventually(Done done) {
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (!done()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// A metric's value from the registry, or -1 when the family is absent.
double MetricValue(const Metrics& metrics, const std::string& name) {
  for (const prometheus::MetricFamily& family : metrics.registry()->Collect()) {
    if (family.name != name || family.metric.empty()) continue;
    return family.type == prometheus::MetricType::Counter ? family.metric[0].counter.value
                                                          : family.metric[0].gauge.value;
  }
  return -1;
}

const NoCallControl kNoCall;

TEST(InflightBudgetTest, ReservesAndReleasesWithoutWaitingWhileItFits) {
  Metrics metrics;
  InflightBudget budget(100, absl::Seconds(60), &metrics);
  absl::StatusOr<InflightBudget::Reservation> a = budget.Reserve(60, kNoCall, "a");
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<InflightBudget::Reservation> b = budget.Reserve(40, kNoCall, "b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(budget.reserved_bytes(), 100);
  EXPECT_EQ(MetricValue(metrics, "qcal_record_inflight_bytes"), 100);
  a->Release();
  a->Release();  // idempotent
  EXPECT_EQ(budget.reserved_bytes(), 40);
  {
    InflightBudget::Reservation moved = std::move(*b);
    EXPECT_EQ(moved.bytes(), 40);
    EXPECT_EQ(budget.reserved_bytes(), 40);
  }  // released by its destructor
  EXPECT_EQ(budget.reserved_bytes(), 0);
  EXPECT_EQ(budget.waits_total(), 0);
  EXPECT_EQ(MetricValue(metrics, "qcal_record_inflight_bytes"), 0);
  EXPECT_EQ(MetricValue(metrics, "qcal_record_inflight_waits_total"), 0);
}

TEST(InflightBudgetTest, WaitsUntilAReleaseMakesRoom) {
  Metrics metrics;
  InflightBudget budget(100, absl::Seconds(60), &metrics);
  absl::StatusOr<InflightBudget::Reservation> held = budget.Reserve(80, kNoCall, "held");
  ASSERT_TRUE(held.ok());
  std::optional<absl::StatusOr<InflightBudget::Reservation>> waited;
  std::thread waiter([&] { waited = budget.Reserve(50, kNoCall, "waiter"); });
  ASSERT_TRUE(Eventually([&] { return budget.waiting() == 1; }));
  EXPECT_EQ(MetricValue(metrics, "qcal_record_inflight_waiting"), 1);
  EXPECT_EQ(MetricValue(metrics, "qcal_record_inflight_waits_total"), 1);
  EXPECT_EQ(budget.reserved_bytes(), 80);  // the waiter holds nothing yet
  held->Release();
  waiter.join();
  ASSERT_TRUE(waited->ok()) << waited->status();
  EXPECT_EQ(budget.reserved_bytes(), 50);
  EXPECT_EQ(budget.waiting(), 0);
  EXPECT_EQ(budget.waits_total(), 1);
  EXPECT_EQ(MetricValue(metrics, "qcal_record_inflight_waiting"), 0);
}

TEST(InflightBudgetTest, AReservationLargerThanTheLimitIsGrantedAlone) {
  InflightBudget budget(100, absl::Seconds(60), nullptr);
  {
    absl::StatusOr<InflightBudget::Reservation> alone = budget.Reserve(250, kNoCall, "big");
    ASSERT_TRUE(alone.ok());
    EXPECT_EQ(budget.reserved_bytes(), 250);
  }
  absl::StatusOr<InflightBudget::Reservation> small = budget.Reserve(10, kNoCall, "small");
  ASSERT_TRUE(small.ok());
  std::optional<absl::StatusOr<InflightBudget::Reservation>> big;
  std::thread waiter([&] { big = budget.Reserve(250, kNoCall, "big"); });
  ASSERT_TRUE(Eventually([&] { return budget.waiting() == 1; }));
  small->Release();
  waiter.join();
  ASSERT_TRUE(big->ok());
  EXPECT_EQ(budget.reserved_bytes(), 250);
}

TEST(InflightBudgetTest, WaitersAreServedInTurn) {
  InflightBudget budget(100, absl::Seconds(60), nullptr);
  absl::StatusOr<InflightBudget::Reservation> held = budget.Reserve(100, kNoCall, "held");
  ASSERT_TRUE(held.ok());
  std::optional<absl::StatusOr<InflightBudget::Reservation>> first, second;
  std::thread large([&] { first = budget.Reserve(100, kNoCall, "first"); });
  ASSERT_TRUE(Eventually([&] { return budget.waiting() == 1; }));
  std::thread small([&] { second = budget.Reserve(10, kNoCall, "second"); });
  ASSERT_TRUE(Eventually([&] { return budget.waiting() == 2; }));
  held->Release();
  large.join();  // the first in line gets the room, though the second would fit sooner
  ASSERT_TRUE(first->ok());
  EXPECT_EQ(budget.reserved_bytes(), 100);
  EXPECT_EQ(budget.waiting(), 1);
  first->value().Release();
  small.join();
  ASSERT_TRUE(second->ok());
  EXPECT_EQ(budget.reserved_bytes(), 10);
}

TEST(InflightBudgetTest, TheCallsDeadlineEndsTheWaitWithResourceExhausted) {
  Metrics metrics;
  InflightBudget budget(100, absl::Seconds(3600), &metrics);
  absl::StatusOr<InflightBudget::Reservation> held = budget.Reserve(100, kNoCall, "held");
  ASSERT_TRUE(held.ok());
  const FakeCall call(absl::Now() + absl::Milliseconds(300));
  absl::StatusOr<InflightBudget::Reservation> refused =
      budget.Reserve(1, call, "model 'm', quantizer 'q'");
  // Refused before the call's deadline (margin: a tenth of the wait), not after the hour.
  EXPECT_LT(absl::Now(), call.Deadline() + absl::Seconds(30));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("model 'm', quantizer 'q'"));
  EXPECT_THAT(refused.status().message(), HasSubstr("--max-inflight-bytes (100 bytes, 100 "));
  EXPECT_THAT(refused.status().message(), HasSubstr("the call's deadline"));
  EXPECT_EQ(budget.reserved_bytes(), 100);
  EXPECT_EQ(budget.waiting(), 0);
  EXPECT_EQ(MetricValue(metrics, "qcal_record_inflight_waits_total"), 1);
}

TEST(InflightBudgetTest, WithoutADeadlineTheMaxWaitEndsTheWait) {
  InflightBudget budget(100, absl::Milliseconds(100), nullptr);
  absl::StatusOr<InflightBudget::Reservation> held = budget.Reserve(100, kNoCall, "held");
  ASSERT_TRUE(held.ok());
  absl::StatusOr<InflightBudget::Reservation> refused = budget.Reserve(1, kNoCall, "q");
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("--max-inflight-wait-seconds"));
  EXPECT_THAT(refused.status().message(), HasSubstr("--max-inflight-bytes"));
  // The one who left does not block those behind it.
  held->Release();
  EXPECT_TRUE(budget.Reserve(100, kNoCall, "next").ok());
}

TEST(InflightBudgetTest, CancellingTheCallStopsTheWait) {
  InflightBudget budget(100, absl::Seconds(3600), nullptr);
  absl::StatusOr<InflightBudget::Reservation> held = budget.Reserve(100, kNoCall, "held");
  ASSERT_TRUE(held.ok());
  FakeCall call;
  std::optional<absl::StatusOr<InflightBudget::Reservation>> waited;
  std::thread waiter([&] { waited = budget.Reserve(10, call, "q"); });
  ASSERT_TRUE(Eventually([&] { return budget.waiting() == 1; }));
  call.Cancel();
  waiter.join();  // within kCancelPoll, not the hour
  EXPECT_EQ(waited->status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(budget.waiting(), 0);
  EXPECT_EQ(budget.reserved_bytes(), 100);
  // A call cancelled before it waits is refused only if it has to wait.
  held->Release();
  EXPECT_TRUE(budget.Reserve(10, call, "q").ok());
}

}  // namespace
}  // namespace qcal::server
