#include "client/cli/progress_bar.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qcal::cli {
namespace {

// At most 10 redraws a second.
constexpr absl::Duration kRedrawEvery = absl::Milliseconds(100);
constexpr int kBarWidth = 20;

// "812 B", "3.4 KiB", "12.0 MiB", "1.50 GiB".
std::string Bytes(double bytes) {
  constexpr std::string_view kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit + 1 < static_cast<int>(std::size(kUnits))) {
    bytes /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(static_cast<int64_t>(bytes), " B");
  return absl::StrFormat(bytes < 10 ? "%.2f %s" : "%.1f %s", bytes, kUnits[unit]);
}

// "7s", "2m05s", "1h02m".
std::string Eta(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
}

bool EnvSet(const char* name, std::string_view off_value) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' && value != off_value;
}

}  // namespace

ProgressTarget ProgressTarget::ForStderr(bool quiet) {
  ProgressTarget target;
  const char* term = std::getenv("TERM");
  if (quiet || !isatty(STDERR_FILENO) || (term != nullptr && std::string_view(term) == "dumb") ||
      EnvSet("QCAL_NO_PROGRESS", "0")) {
    return target;
  }
  target.out = &std::cerr;
  struct winsize size;
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) target.columns = size.ws_col;
  return target;
}

ProgressBar::ProgressBar(ProgressTarget target, std::string label)
    : target_(target), label_(std::move(label)), start_(absl::Now()) {}

ProgressBar::~ProgressBar() {
  absl::MutexLock lock(&mu_);
  // Unfinished: an error follows, on a line of its own.
  if (drawn_ && !finished_) *target_.out << "\n" << std::flush;
}

void ProgressBar::Update(int64_t done, int64_t total) {
  if (target_.out == nullptr) return;
  absl::MutexLock lock(&mu_);
  done_ = done;
  total_ = total;
  const absl::Time now = absl::Now();
  if (now - last_draw_ < kRedrawEvery) return;
  last_draw_ = now;
  Draw(/*final=*/false);
}

ProgressCallback ProgressBar::Callback(int64_t total) {
  if (target_.out == nullptr) return nullptr;
  return [this, total](int64_t done, int64_t reported) {
    Update(done, total >= 0 ? total : reported);
  };
}

void ProgressBar::Finish() {
  if (target_.out == nullptr) return;
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  Draw(/*final=*/true);
  *target_.out << "\n" << std::flush;
  finished_ = true;
}

void ProgressBar::Draw(bool final) {
  // "\x1b[K" erases what a longer earlier line left behind.
  *target_.out << "\r"
               << Render(label_, done_, total_, absl::Now() - start_, final, target_.columns)
               << "\x1b[K" << std::flush;
  drawn_ = true;
}

std::string ProgressBar::Render(const std::string& label, int64_t done, int64_t total,
                                absl::Duration elapsed, bool final, int columns) {
  const bool known = total >= 0;
  if (known) done = std::min(done, total);
  const double seconds = absl::ToDoubleSeconds(elapsed);
  // Rates over a few milliseconds say nothing.
  const bool timed = seconds >= 0.05;
  const double rate = timed ? static_cast<double>(done) / seconds : 0;
  std::string line;
  if (final) {
    // The summary: no bar, the exact byte count.
    absl::StrAppend(&line, ": ", known ? "100%, " : "", done, " bytes (", Bytes(done), ") in ",
                    absl::StrFormat("%.1f s", seconds));
    if (timed) absl::StrAppend(&line, ", ", Bytes(rate), "/s");
  } else if (known) {
    const int percent = total == 0 ? 100 : static_cast<int>(done * 100 / total);
    const int filled = total == 0 ? kBarWidth : static_cast<int>(done * kBarWidth / total);
    absl::StrAppend(&line, " [", std::string(filled, '#'), std::string(kBarWidth - filled, '-'),
                    "] ", absl::StrFormat("%3d%%", percent), "  ", Bytes(done), "/", Bytes(total));
  } else {
    absl::StrAppend(&line, "  ", Bytes(done));
  }
  if (!final && timed) {
    absl::StrAppend(&line, "  ", Bytes(rate), "/s");
    if (known && rate > 0) absl::StrAppend(&line, "  ETA ", Eta((total - done) / rate));
  }
  // The label gives way first on a narrow terminal, then the line's end.
  const size_t width = static_cast<size_t>(std::max(columns - 1, 1));
  std::string shown = label;
  if (shown.size() + line.size() > width) {
    const size_t room = width > line.size() + 4 ? width - line.size() : 4;
    shown = shown.size() > room ? absl::StrCat(shown.substr(0, room - 3), "...") : shown;
  }
  std::string result = shown + line;
  if (result.size() > width) result.resize(width);
  return result;
}

}  // namespace qcal::cli
