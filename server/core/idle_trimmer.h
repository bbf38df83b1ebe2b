// Gives memory back to the system once the server has had no active Record stream for a while.
// While streams run, freed batch memory is kept for speed: idle batch buffers in the
// BufferPool, and in glibc's arenas what main.cc's mallopt(M_TRIM_THRESHOLD) lets it keep (per
// arena). After `delay` without any stream, a background thread empties the process-wide
// BufferPool and calls malloc_trim(0), which returns the free pages of every arena.
//
//   IdleTrimmer trimmer(absl::Seconds(2), &metrics);
//   {
//     IdleTrimmer::Activity active = trimmer.Begin();   // a stream opened
//     ...
//   }                                                   // the last one closed: release later
#ifndef QCAL_SERVER_CORE_IDLE_TRIMMER_H_
#define QCAL_SERVER_CORE_IDLE_TRIMMER_H_

#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/metrics.h"

namespace qcal::server {

class IdleTrimmer {
 public:
  // Marks the server active while it lives. Move-only.
  class Activity {
   public:
    Activity() = default;
    ~Activity();
    Activity(Activity&& other) noexcept : trimmer_(std::exchange(other.trimmer_, nullptr)) {}
    Activity& operator=(Activity&& other) noexcept;
    Activity(const Activity&) = delete;
    Activity& operator=(const Activity&) = delete;

   private:
    friend class IdleTrimmer;
    explicit Activity(IdleTrimmer* trimmer) : trimmer_(trimmer) {}
    IdleTrimmer* trimmer_ = nullptr;  // null: marks nothing
  };

  // `metrics` may be null; it must outlive this object otherwise.
  IdleTrimmer(absl::Duration delay, Metrics* metrics);
  // Stops the thread (without a last release). Precondition: no Activity outstanding.
  ~IdleTrimmer();
  IdleTrimmer(const IdleTrimmer&) = delete;
  IdleTrimmer& operator=(const IdleTrimmer&) = delete;

  Activity Begin();

  // Releases done since construction (each after the last activity of a busy period ended).
  int64_t releases() const;

 private:
  void End();
  // The thread: waits for an idle period of `delay_`, then releases.
  void Run();
  // Empties the BufferPool, then malloc_trim(0) (glibc only).
  static void ReleaseMemory();

  // Constant after construction.
  const absl::Duration delay_;
  Metrics* const metrics_;

  mutable absl::Mutex mu_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by each Begin: an idle period that saw a Begin is not idle.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Activity ended since the last release.
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t releases_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_IDLE_TRIMMER_H_
