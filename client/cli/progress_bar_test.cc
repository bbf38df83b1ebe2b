#include "client/cli/progress_bar.h"

#include <gtest/gtest.h>

#include <sstream>

namespace qcal::cli {
namespace {

TEST(ProgressBarTest, KnownTotalShowsBarPercentBytesRateAndEta) {
  // A quarter of 8 MiB in 1 s: 2 MiB/s, 3 s to go.
  EXPECT_EQ(ProgressBar::Render("record a.npy", 2 << 20, 8 << 20, absl::Seconds(1),
                                /*final=*/false, 200),
            "record a.npy [#####---------------]  25%  2.00 MiB/8.00 MiB  2.00 MiB/s  ETA 3s");
}

TEST(ProgressBarTest, FinalLineSumsUpWithTheExactByteCount) {
  EXPECT_EQ(ProgressBar::Render("export m.onnx", 5000, 5000, absl::Seconds(2), /*final=*/true, 200),
            "export m.onnx: 100%, 5000 bytes (4.88 KiB) in 2.0 s, 2.44 KiB/s");
}

TEST(ProgressBarTest, UnknownTotalShowsBytesAndRateOnly) {
  EXPECT_EQ(ProgressBar::Render("state save m", 300 << 20, kUnknownTotal, absl::Seconds(10),
                                /*final=*/false, 200),
            "state save m  300.0 MiB  30.0 MiB/s");
  EXPECT_EQ(ProgressBar::Render("state save m", 2048, kUnknownTotal, absl::Seconds(1),
                                /*final=*/true, 200),
            "state save m: 2048 bytes (2.00 KiB) in 1.0 s, 2.00 KiB/s");
}

TEST(ProgressBarTest, DoneBeyondTheTotalShowsTheTotal) {
  // A Record stream resent after a reconnect writes more than the array holds.
  EXPECT_EQ(ProgressBar::Render("r", 150, 100, absl::Milliseconds(1), /*final=*/false, 200),
            "r [####################] 100%  100 B/100 B");
}

TEST(ProgressBarTest, NarrowTerminalShortensTheLabelThenTheLine) {
  const std::string line = ProgressBar::Render(std::string(100, 'x'), 1, 2, absl::Seconds(1),
                                               /*final=*/false, 80);
  EXPECT_EQ(line, std::string(24, 'x') + "... [##########----------]  50%  1 B/2 B  1 B/s  ETA 1s");
  EXPECT_EQ(line.size(), 79u);
  // Too narrow even for the bar: the label keeps a few characters, the line is cut.
  EXPECT_EQ(ProgressBar::Render("label", 1, 2, absl::Seconds(1), /*final=*/false, 10), "l... [###");
}

TEST(ProgressBarTest, DisabledBarWritesNothingAndGivesNoCallback) {
  ProgressBar bar(ProgressTarget{}, "record a.npy");
  EXPECT_FALSE(bar.Callback(10));
  bar.Update(5, 10);
  bar.Finish();
}

TEST(ProgressBarTest, EnabledBarRedrawsInPlaceAndEndsWithOneNewline) {
  std::ostringstream out;
  {
    ProgressBar bar(ProgressTarget{.out = &out, .columns = 200}, "load f");
    ProgressCallback callback = bar.Callback();
    callback(10, 40);  // the first update draws at once
    callback(20, 40);  // drawn or throttled, as the clock has it
    callback(40, 40);
    bar.Finish();
  }
  const std::string text = out.str();
  EXPECT_EQ(text.rfind("\rload f [#####---------------]  25%  10 B/40 B", 0), 0u) << text;
  EXPECT_NE(text.find("\rload f: 100%, 40 bytes (40 B) in "), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1) << text;
}

TEST(ProgressBarTest, UnfinishedBarEndsItsLineSoAnErrorStartsANewOne) {
  std::ostringstream out;
  {
    ProgressBar bar(ProgressTarget{.out = &out, .columns = 200}, "record a.npy");
    bar.Update(1, 4);
  }
  EXPECT_EQ(out.str().back(), '\n');
  EXPECT_EQ(out.str().find("100%"), std::string::npos);
}

}  // namespace
}  // namespace qcal::cli
