// The server's Prometheus metrics. This class owns the registry and defines each family once;
// callers report by model or RPC name and never touch prometheus-cpp types. Thread-safe.
//
//   qcal_record_bytes_total{model}       bytes of applied batches, in their wire dtype
//   qcal_record_elements_total{model}    values of applied batches (finite or not)
//   qcal_record_batches_total{model}     applied batches
//   qcal_record_nonfinite_total{model}   NaN and +-inf values (counted, left out of calibration)
//   qcal_rpc_duration_seconds{method}    histogram of RPC durations (a stream: its whole life)
//   qcal_rpc_errors_total{method,code}   calls the server refused, by the gRPC code's name
//                                        ("NOT_FOUND"); a series appears at its first error. Not
//                                        streams ended as idle (their own counter below)
//   qcal_record_streams_active           Record streams open now
//   qcal_record_inflight_bytes           bytes reserved by Record batches in flight (their bytes
//                                        plus float32 decode scratch; --max-inflight-bytes)
//   qcal_record_inflight_waiting         Record batches waiting for room under that limit now
//   qcal_record_inflight_waits_total     Record batches that had to wait (then went on, or were
//                                        refused at their deadline, or cancelled)
//   qcal_buffer_pool_bytes               idle batch buffers kept for reuse (read at each scrape;
//                                        bounded, emptied when no stream has run for a while)
//   qcal_memory_releases_total           idle periods after which memory was given back
//   qcal_device_info{device,name}        1 for the device the calibrators run on ("cpu", "cuda")
//   qcal_device_memory_bytes{device,kind} a GPU's memory, read at each scrape: kind "allocated"
//                                        (held by qcal's calibrators and staging buffers), "free",
//                                        "total" (absent on the CPU)
//   qcal_state_bytes{kind}               read at each scrape: kind "used", what all models hold
//                                        against --max-state-bytes, and "limit", that flag
//   qcal_models                          models held now (read at each scrape; --max-models)
//   qcal_quantizers                      quantizers of all those models (read at each scrape)
//   qcal_models_expired_total            models deleted by the --model-ttl sweep
//   qcal_record_streams_idle_ended_total streams ended for --stream-idle-seconds
//   qcal_calls_refused_total             calls gRPC refused for want of a thread
//                                        (--max-concurrent-calls)
//
// Full histograms go over the API (GetHistogram), not as series: label cardinality.
#ifndef QCAL_SERVER_CORE_METRICS_H_
#define QCAL_SERVER_CORE_METRICS_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/core/quantizer_state.h"
#include "server/device/calibrator.h"

namespace qcal::server {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // For the /metrics endpoint.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // Creates the model's series at 0, so a scrape shows a model before its first batch.
  void AddModel(const std::string& model);
  // Adds applied batches to the model's counters.
  void AddBatches(const std::string& model, const BatchStats& applied);
  // Drops the model's series (a deleted model's counters do not linger).
  void RemoveModel(const std::string& model);
  // The model's qcal_record_bytes_total and qcal_record_batches_total now (zero for a model
  // without series), for the dashboard's ingest rate.
  struct Ingest {
    double bytes = 0;
    double batches = 0;
  };
  Ingest IngestOf(const std::string& model) const;

  void ObserveRpc(absl::string_view method, double seconds);
  // The server ended a call with an error (a Record error alert needs the code-less rate; a
  // label on the histogram would multiply its buckets by the codes).
  void RpcFailed(absl::string_view method, absl::StatusCode code);
  // Calls running now (RpcTimer counts them), so that shutdown waits for calls, not for idle
  // client connections.
  void RpcStarted() { rpcs_in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void RpcFinished() { rpcs_in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t rpcs_in_flight() const { return rpcs_in_flight_.load(std::memory_order_relaxed); }

  // The device the calibrators run on: sets qcal_device_info and, where `backend` has device
  // memory, samples qcal_device_memory_bytes from it at each scrape. Call once.
  void SetDevice(std::shared_ptr<const CalibratorBackend> backend);
  void StreamOpened() { active_streams_->Increment(); }
  void StreamClosed() { active_streams_->Decrement(); }
  // An amax computation stopped for a cancelled call.
  void AmaxCancelled() { amax_cancelled_->Increment(); }
  double amax_cancelled() const { return amax_cancelled_->Value(); }
  // gRPC refused a call for want of a thread (--max-concurrent-calls).
  void CallRefused() { calls_refused_->Increment(); }
  // The in-flight budget's reserved bytes and waiting batches (InflightBudget).
  void SetInflight(int64_t reserved_bytes, int waiting) {
    inflight_bytes_->Set(static_cast<double>(reserved_bytes));
    inflight_waiting_->Set(waiting);
  }
  void InflightWaitStarted() { inflight_waits_->Increment(); }
  // IdleTrimmer gave memory back.
  void MemoryReleased() { memory_releases_->Increment(); }

  // What the models hold, read before each scrape from the source CalibrationCore sets (null:
  // none, the gauges keep their last reading).
  struct HeldReading {
    int64_t state_bytes = 0;
    int64_t state_limit_bytes = 0;
    int64_t models = 0;
    int64_t quantizers = 0;
  };
  void SetHeldSource(std::function<HeldReading()> source);
  // The --model-ttl sweep deleted a model; the watchdog ended an idle Record stream.
  void ModelExpired() { models_expired_->Increment(); }
  void StreamIdleEnded() { streams_idle_ended_->Increment(); }

 private:
  std::atomic<int64_t> rpcs_in_flight_{0};
  struct ModelCounters {
    prometheus::Counter* bytes;
    prometheus::Counter* elements;
    prometheus::Counter* batches;
    prometheus::Counter* nonfinite;
  };
  // The model's counters, created if missing.
  ModelCounters CountersLocked(const std::string& model) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads the device's memory into its gauges (before each scrape).
  void SampleDevice();
  // Reads the BufferPool's size into its gauge (before each scrape).
  void SampleBufferPool();
  // Reads the held source into its gauges (before each scrape).
  void SampleHeld();

  // Constant after construction.
  const std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* const bytes_;
  prometheus::Family<prometheus::Counter>* const elements_;
  prometheus::Family<prometheus::Counter>* const batches_;
  prometheus::Family<prometheus::Counter>* const nonfinite_;
  prometheus::Family<prometheus::Histogram>* const rpc_duration_;
  prometheus::Family<prometheus::Counter>* const rpc_errors_;
  prometheus::Gauge* const active_streams_;
  prometheus::Gauge* const inflight_bytes_;
  prometheus::Gauge* const inflight_waiting_;
  prometheus::Counter* const inflight_waits_;
  prometheus::Gauge* const buffer_pool_bytes_;
  prometheus::Counter* const memory_releases_;
  const prometheus::Histogram::BucketBoundaries rpc_buckets_;
  prometheus::Family<prometheus::Gauge>* const device_info_;
  prometheus::Family<prometheus::Gauge>* const device_memory_;
  prometheus::Counter* const amax_cancelled_;
  prometheus::Counter* const calls_refused_;

  // Serializes creating, incrementing and removing per-model series, so no counter is
  // incremented after its removal.
  mutable absl::Mutex mu_;

  absl::Mutex device_mu_;
  std::shared_ptr<const CalibratorBackend> device_ ABSL_GUARDED_BY(device_mu_);
  // qcal_device_memory_bytes by kind; null until SetDevice with a device that has memory.
  prometheus::Gauge* memory_allocated_ ABSL_GUARDED_BY(device_mu_) = nullptr;
  prometheus::Gauge* memory_free_ ABSL_GUARDED_BY(device_mu_) = nullptr;
  prometheus::Gauge* memory_total_ ABSL_GUARDED_BY(device_mu_) = nullptr;

  // The limits' series (--max-state-bytes, --max-models, --model-ttl, --stream-idle-seconds);
  // constant after construction but for the held source.
  prometheus::Family<prometheus::Gauge>* const state_bytes_;
  prometheus::Gauge* const state_used_;
  prometheus::Gauge* const state_limit_;
  prometheus::Gauge* const models_;
  prometheus::Gauge* const quantizers_;
  prometheus::Counter* const models_expired_;
  prometheus::Counter* const streams_idle_ended_;
  absl::Mutex held_mu_;
  std::function<HeldReading()> held_source_ ABSL_GUARDED_BY(held_mu_);
};

// Counts one RPC as running, and observes its duration when it goes out of scope.
class RpcTimer {
 public:
  RpcTimer(Metrics& metrics, absl::string_view method)
      : metrics_(metrics), method_(method), start_(std::chrono::steady_clock::now()) {
    metrics_.RpcStarted();
  }
  ~RpcTimer() {
    metrics_.RpcFinished();
    metrics_.ObserveRpc(
        method_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  RpcTimer(const RpcTimer&) = delete;
  RpcTimer& operator=(const RpcTimer&) = delete;

 private:
  Metrics& metrics_;
  const absl::string_view method_;
  const std::chrono::steady_clock::time_point start_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_METRICS_H_
