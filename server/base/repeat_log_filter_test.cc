#include "server/base/repeat_log_filter.h"

#include <gtest/gtest.h>

#include <optional>

#include "absl/strings/str_cat.h"

namespace qcal::server {
namespace {

TEST(RepeatLogFilterTest, ARepeatWithinTheIntervalIsHeldBackAndCountedWithTheNext) {
  RepeatLogFilter filter(absl::Seconds(5));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  const char full[] = "model 'm': cannot write /d/m.qcalstate: No space left on device";
  EXPECT_EQ(filter.Pass(full, t0), 0);
  EXPECT_EQ(filter.Pass(full, t0 + absl::Seconds(1)), std::nullopt);
  EXPECT_EQ(filter.Pass(full, t0 + absl::Seconds(4)), std::nullopt);
  // Another text (another model, another reason) is its own.
  EXPECT_EQ(
      filter.Pass("model 'n': cannot write /d/n.qcalstate: File too large", t0 + absl::Seconds(4)),
      0);
  EXPECT_EQ(filter.Pass(full, t0 + absl::Seconds(5)), 2);
  EXPECT_EQ(filter.Pass(full, t0 + absl::Seconds(6)), std::nullopt);
  EXPECT_EQ(filter.Pass(full, t0 + absl::Seconds(11)), 1);
  EXPECT_EQ(filter.Pass(full, t0 + absl::Seconds(30)), 0);
}

TEST(RepeatLogFilterTest, ManyTextsAreLoggedAndOldOnesForgotten) {
  RepeatLogFilter filter(absl::Seconds(5));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 3000; ++i) EXPECT_EQ(filter.Pass(absl::StrCat("text ", i), t0), 0);
  // The map stayed full of recent texts: those past it were logged, not remembered.
  EXPECT_EQ(filter.Pass("text 5", t0 + absl::Seconds(1)), std::nullopt);
  EXPECT_EQ(filter.Pass("text 2999", t0 + absl::Seconds(1)), 0);
  // An interval later the old ones make room.
  EXPECT_EQ(filter.Pass("new", t0 + absl::Seconds(6)), 0);
  EXPECT_EQ(filter.Pass("new", t0 + absl::Seconds(7)), std::nullopt);
}

}  // namespace
}  // namespace qcal::server
