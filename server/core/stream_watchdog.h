// Ends streams whose client sends nothing for too long (--stream-idle-seconds), so that a client
// that went away without closing its stream (a host that died, a network that dropped it without
// a reset) does not hold a server thread and its stream's state forever. A stream is idle only
// while the server waits to read from it: time spent applying a batch, or waiting for
// --max-inflight-bytes, never counts. Ending is the front-end's (server/rpc/idle_stream.h ends the
// gRPC call with CANCELLED naming --stream-idle-seconds; qcal's clients reopen a Record stream
// when they next send). It watches Record, UploadOnnx, LoadState and ExportOnnx's requests.
//
//   StreamWatchdog watchdog(absl::Seconds(600));
//   StreamWatchdog::Watch watch = watchdog.Add("Record from ipv4:...", [&] { EndTheCall(); });
//   watch.Reading();  while (reader->Read(&request)) { watch.Busy(); ...; watch.Reading(); }
#ifndef QCAL_SERVER_CORE_STREAM_WATCHDOG_H_
#define QCAL_SERVER_CORE_STREAM_WATCHDOG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/metrics.h"

namespace qcal::server {

class StreamWatchdog {
 public:
  // One stream's registration, until destroyed. Move-only; an empty one (of a watchdog that is
  // off) does nothing.
  class Watch {
   public:
    Watch() = default;
    ~Watch();
    Watch(Watch&& other) noexcept;
    Watch& operator=(Watch&& other) = delete;
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

    // The server starts waiting for the client's next message: the idle clock starts.
    void Reading();
    // A message arrived: the stream is busy until the next Reading().
    void Busy();
    // What the log line names ("Record stream of model 'm' from ipv4:...").
    void Describe(std::string what);

   private:
    friend class StreamWatchdog;
    Watch(StreamWatchdog* watchdog, uint64_t id) : watchdog_(watchdog), id_(id) {}
    StreamWatchdog* watchdog_ = nullptr;
    uint64_t id_ = 0;
  };

  // `idle` > 0 ends streams idle that long (checked every idle / 10, between 10 ms and 1 s);
  // absl::ZeroDuration() turns the watchdog off (no thread). `metrics` (may be null; it must
  // outlive the watchdog otherwise) counts the streams ended.
  explicit StreamWatchdog(absl::Duration idle, Metrics* metrics = nullptr);
  // Precondition: no Watch outstanding.
  ~StreamWatchdog();
  StreamWatchdog(const StreamWatchdog&) = delete;
  StreamWatchdog& operator=(const StreamWatchdog&) = delete;

  // Registers a stream; `end` is called at most once, from the watchdog's thread (while the
  // Watch cannot be destroyed), when the stream has been Reading() for `idle`. Starts busy.
  Watch Add(std::string what, std::function<void()> end);

  absl::Duration idle() const { return idle_; }
  // Streams ended so far.
  int64_t ended() const;

 private:
  struct Entry {
    std::string what{};
    std::function<void()> end{};
    // When the server began waiting to read; InfiniteFuture while busy.
    absl::Time reading_since = absl::InfiniteFuture();
    bool ended = false;
  };
  // Ends the entries idle as of `now`.
  void Check(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  void Run();

  const absl::Duration idle_;
  Metrics* const metrics_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t ended_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_STREAM_WATCHDOG_H_
