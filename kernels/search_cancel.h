// How the amax searches (amax_search.h) poll SearchOptions::cancelled: once before any work,
// then from each chunk of candidates, between candidates, once kSearchPollWork units of work (a
// quantization level or group evaluated, or eight bins scored one by one) have passed since
// its last poll. So a cancelled search stops within that much work per thread plus one
// candidate's (at most one pass over the bins: about a millisecond at 2^20 bins). Once the
// hook has returned true it is not called again, and every chunk stops at its next candidate.
//
//   SearchCancel cancel(options.cancelled);
//   if (cancel.Poll()) return cancel.Status("mse");
//   ParallelFor(n, chunks, [&](int, int64_t begin, int64_t end) {
//     SearchCancel::Meter meter(cancel);
//     for (int64_t k = begin; k < end && !meter.Tick(WorkOf(k)); ++k) Score(k);
//   });
//   if (cancel.cancelled()) return cancel.Status("mse");
#ifndef QCAL_KERNELS_SEARCH_CANCEL_H_
#define QCAL_KERNELS_SEARCH_CANCEL_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace qcal::kernels {

// Work units between two polls of one chunk: a few microseconds of search.
inline constexpr int64_t kSearchPollWork = 4096;

class SearchCancel {
 public:
  // `hook` may be null (never cancelled); it must be callable from several threads at once.
  explicit SearchCancel(const std::function<bool()>* hook) : hook_(hook) {}
  SearchCancel(const SearchCancel&) = delete;
  SearchCancel& operator=(const SearchCancel&) = delete;

  // Calls the hook unless the search is already cancelled; true when it is.
  bool Poll() {
    if (hook_ == nullptr) return false;
    if (stop_.load(std::memory_order_relaxed)) return true;
    if (!(*hook_)()) return false;
    stop_.store(true, std::memory_order_relaxed);
    return true;
  }

  bool cancelled() const { return stop_.load(std::memory_order_relaxed); }

  // CANCELLED, naming the search ("mse", "entropy", "percentile").
  static absl::Status Status(const char* search) {
    return absl::CancelledError(absl::StrCat(search, " search cancelled"));
  }

  // One chunk's count of work since its last poll.
  class Meter {
   public:
    explicit Meter(SearchCancel& cancel) : cancel_(cancel) {}
    // Adds `work` units done; true when the search is cancelled (polling when due).
    bool Tick(int64_t work) {
      if (cancel_.hook_ == nullptr) return false;
      since_poll_ += work;
      if (since_poll_ < kSearchPollWork) return cancel_.cancelled();
      since_poll_ = 0;
      return cancel_.Poll();
    }

   private:
    SearchCancel& cancel_;
    int64_t since_poll_ = 0;
  };

 private:
  const std::function<bool()>* hook_;
  std::atomic<bool> stop_{false};
};

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_SEARCH_CANCEL_H_
