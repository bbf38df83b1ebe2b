// The progress bar of the CLI's long transfers (record, export, state save, state load), drawn on
// stderr when it is a terminal and nothing else: scripts that pipe stderr see no bar, and stdout
// never changes.
//
//   ProgressTarget target = ProgressTarget::ForStderr(quiet);  // off unless stderr is a TTY
//   ProgressBar bar(target, "record a.npy");
//   session_options.progress = bar.Callback(array.bytes());   // qcal/progress.h
//   ...                                                       // the transfer
//   bar.Finish();  // "record a.npy: 100%, 4096 bytes (4.00 KiB) in 0.4 s, 10.0 KiB/s"
//
// The bar redraws one line in place ('\r' and erase-to-end), at most 10 times a second, so a
// callback per 4 MiB chunk never slows the stream. Finish() ends the line with a summary; a bar
// destroyed unfinished (an error) ends its line, so the error message starts a line of its own.
// No colours are used (NO_COLOR holds trivially).
#ifndef QCAL_CLIENT_CLI_PROGRESS_BAR_H_
#define QCAL_CLIENT_CLI_PROGRESS_BAR_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "qcal/progress.h"

namespace qcal::cli {

// Where bars go: `out` null means nowhere.
struct ProgressTarget {
  std::ostream* out = nullptr;
  // Width of the terminal; a line never gets longer than columns - 1 (a wrapped line would
  // break the in-place redraw).
  int columns = 80;

  // std::cerr when stderr is a terminal, TERM is not "dumb" (such terminals, Emacs' shell among
  // them, do not redraw in place), $QCAL_NO_PROGRESS is unset, empty or "0", and not `quiet`
  // (--quiet); else none.
  static ProgressTarget ForStderr(bool quiet);
};

class ProgressBar {
 public:
  // `label` names the work ("record a.npy"); it is shortened when the terminal is narrow.
  ProgressBar(ProgressTarget target, std::string label);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Thread-safe: the sender thread of a Record stream calls it. `total` < 0: unknown (the bar
  // shows bytes and rate, no percentage or ETA). A `done` past `total` shows as `total`.
  void Update(int64_t done, int64_t total);
  // A ProgressCallback calling Update; with `total` >= 0 it replaces the total the library
  // reports (a session's Record stream does not know what this command recorded).
  ProgressCallback Callback(int64_t total = kUnknownTotal);
  // Draws the last state with the summary and ends the line; does nothing when disabled.
  void Finish();

  // The line drawn for `done` of `total` bytes after `elapsed`, at most `columns` - 1 wide;
  // `final` gives the summary line (the exact byte count, no bar) instead. Public for the unit
  // test.
  static std::string Render(const std::string& label, int64_t done, int64_t total,
                            absl::Duration elapsed, bool final, int columns);

 private:
  void Draw(bool final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const ProgressTarget target_;
  const std::string label_;
  const absl::Time start_;

  absl::Mutex mu_;
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t total_ ABSL_GUARDED_BY(mu_) = kUnknownTotal;
  // When the line was last drawn (the throttle); unset until the first draw.
  absl::Time last_draw_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool drawn_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace qcal::cli

#endif  // QCAL_CLIENT_CLI_PROGRESS_BAR_H_
