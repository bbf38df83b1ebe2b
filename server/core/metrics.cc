#include "server/core/metrics.h"

#include <functional>
#include <utility>
#include <vector>

#include "server/core/buffer_pool.h"

namespace qcal::server {
namespace {

prometheus::Family<prometheus::Counter>* ModelCounter(prometheus::Registry& registry,
                                                      const std::string& name,
                                                      const std::string& help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

// 100 us .. ~52 min in factors of 4: unary calls take well under a millisecond, a Record stream
// can stay open for a whole training run.
prometheus::Histogram::BucketBoundaries RpcBuckets() {
  prometheus::Histogram::BucketBoundaries buckets;
  for (double bound = 1e-4; bound < 4000; bound *= 4) buckets.push_back(bound);
  return buckets;
}

// A registry that runs a hook before each collection, for gauges read at scrape time.
class SamplingRegistry : public prometheus::Registry {
 public:
  void SetHook(std::function<void()> hook) {
    absl::MutexLock lock(&mu_);
    hook_ = std::move(hook);
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    {
      absl::MutexLock lock(&mu_);
      if (hook_) hook_();
    }
    return prometheus::Registry::Collect();
  }

 private:
  mutable absl::Mutex mu_;
  std::function<void()> hook_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<SamplingRegistry>()),
      bytes_(ModelCounter(*registry_, "qcal_record_bytes_total",
                          "Bytes of applied Record batches, in their wire dtype")),
      elements_(ModelCounter(*registry_, "qcal_record_elements_total",
                             "Values of applied Record batches, finite or not")),
      batches_(ModelCounter(*registry_, "qcal_record_batches_total", "Applied Record batches")),
      nonfinite_(ModelCounter(*registry_, "qcal_record_nonfinite_total",
                              "NaN and +-inf values: counted and left out of calibration")),
      rpc_duration_(&prometheus::BuildHistogram()
                         .Name("qcal_rpc_duration_seconds")
                         .Help("Duration of gRPC calls; a stream counts its whole life")
                         .Register(*registry_)),
      rpc_errors_(&prometheus::BuildCounter()
                       .Name("qcal_rpc_errors_total")
                       .Help("gRPC calls the server ended with an error, by method and code")
                       .Register(*registry_)),
      active_streams_(&prometheus::BuildGauge()
                           .Name("qcal_record_streams_active")
                           .Help("Record streams open now")
                           .Register(*registry_)
                           .Add({})),
      inflight_bytes_(&prometheus::BuildGauge()
                           .Name("qcal_record_inflight_bytes")
                           .Help("Bytes reserved by Record batches in flight (with their float32 "
                                 "decode scratch), limited by --max-inflight-bytes")
                           .Register(*registry_)
                           .Add({})),
      inflight_waiting_(&prometheus::BuildGauge()
                             .Name("qcal_record_inflight_waiting")
                             .Help("Record batches waiting now for room under "
                                   "--max-inflight-bytes (their streams are not read)")
                             .Register(*registry_)
                             .Add({})),
      inflight_waits_(&prometheus::BuildCounter()
                           .Name("qcal_record_inflight_waits_total")
                           .Help("Record batches that had to wait for room under "
                                 "--max-inflight-bytes")
                           .Register(*registry_)
                           .Add({})),
      buffer_pool_bytes_(&prometheus::BuildGauge()
                              .Name("qcal_buffer_pool_bytes")
                              .Help("Idle batch buffers kept for reuse; bounded, emptied when no "
                                    "Record stream has run for a while")
                              .Register(*registry_)
                              .Add({})),
      memory_releases_(&prometheus::BuildCounter()
                            .Name("qcal_memory_releases_total")
                            .Help("Idle periods after which the server gave memory back (the "
                                  "buffer pool emptied, malloc_trim)")
                            .Register(*registry_)
                            .Add({})),
      rpc_buckets_(RpcBuckets()),
      device_info_(&prometheus::BuildGauge()
                        .Name("qcal_device_info")
                        .Help("1 for the device the calibrators run on (--device)")
                        .Register(*registry_)),
      device_memory_(&prometheus::BuildGauge()
                          .Name("qcal_device_memory_bytes")
                          .Help("GPU memory: allocated by qcal's calibrators and staging buffers, "
                                "free, total (read at each scrape)")
                          .Register(*registry_)),
      amax_cancelled_(&prometheus::BuildCounter()
                           .Name("qcal_compute_amax_cancelled_total")
                           .Help("ComputeAmax and ExportOnnx computations stopped because their "
                                 "call was cancelled or passed its deadline")
                           .Register(*registry_)
                           .Add({})),
      calls_refused_(&prometheus::BuildCounter()
                          .Name("qcal_calls_refused_total")
                          .Help("Calls refused with RESOURCE_EXHAUSTED because every server "
                                "thread was taken (--max-concurrent-calls)")
                          .Register(*registry_)
                          .Add({})),
      state_bytes_(&prometheus::BuildGauge()
                        .Name("qcal_state_bytes")
                        .Help("Bytes all models hold in calibration state, stored tables and ONNX "
                              "models (kind used), and --max-state-bytes (kind limit)")
                        .Register(*registry_)),
      state_used_(&state_bytes_->Add({{"kind", "used"}})),
      state_limit_(&state_bytes_->Add({{"kind", "limit"}})),
      models_(&prometheus::BuildGauge()
                   .Name("qcal_models")
                   .Help("Models the server holds (at most --max-models)")
                   .Register(*registry_)
                   .Add({})),
      quantizers_(&prometheus::BuildGauge()
                       .Name("qcal_quantizers")
                       .Help("Quantizers of all the models the server holds")
                       .Register(*registry_)
                       .Add({})),
      models_expired_(&prometheus::BuildCounter()
                           .Name("qcal_models_expired_total")
                           .Help("Models deleted because no call used them for --model-ttl")
                           .Register(*registry_)
                           .Add({})),
      streams_idle_ended_(
          &prometheus::BuildCounter()
               .Name("qcal_record_streams_idle_ended_total")
               .Help("Streams (Record, UploadOnnx, LoadState, ExportOnnx) the server "
                     "ended after --stream-idle-seconds without a message")
               .Register(*registry_)
               .Add({})) {
  static_cast<SamplingRegistry&>(*registry_).SetHook([this] {
    SampleDevice();
    SampleBufferPool();
    SampleHeld();
  });
}

void Metrics::SetHeldSource(std::function<HeldReading()> source) {
  absl::MutexLock lock(&held_mu_);
  held_source_ = std::move(source);
}

void Metrics::SampleHeld() {
  absl::MutexLock lock(&held_mu_);
  if (!held_source_) return;
  const HeldReading held = held_source_();
  state_used_->Set(static_cast<double>(held.state_bytes));
  state_limit_->Set(static_cast<double>(held.state_limit_bytes));
  models_->Set(static_cast<double>(held.models));
  quantizers_->Set(static_cast<double>(held.quantizers));
}

Metrics::~Metrics() {
  // The registry may outlive this object (an HTTP handler holds it).
  static_cast<SamplingRegistry&>(*registry_).SetHook(nullptr);
}

void Metrics::SetDevice(std::shared_ptr<const CalibratorBackend> backend) {
  const std::string device = backend->device();
  device_info_->Add({{"device", device}, {"name", backend->device_name()}}).Set(1);
  absl::MutexLock lock(&device_mu_);
  if (backend->Memory().has_value()) {
    memory_allocated_ = &device_memory_->Add({{"device", device}, {"kind", "allocated"}});
    memory_free_ = &device_memory_->Add({{"device", device}, {"kind", "free"}});
    memory_total_ = &device_memory_->Add({{"device", device}, {"kind", "total"}});
  }
  device_ = std::move(backend);
}

void Metrics::SampleDevice() {
  absl::MutexLock lock(&device_mu_);
  if (device_ == nullptr || memory_allocated_ == nullptr) return;
  const std::optional<DeviceMemory> memory = device_->Memory();
  if (!memory.has_value()) return;  // keeps the last reading
  memory_allocated_->Set(static_cast<double>(memory->allocated));
  memory_free_->Set(static_cast<double>(memory->free));
  memory_total_->Set(static_cast<double>(memory->total));
}

void Metrics::SampleBufferPool() {
  buffer_pool_bytes_->Set(static_cast<double>(BufferPool::Global().bytes()));
}

Metrics::ModelCounters Metrics::CountersLocked(const std::string& model) {
  const prometheus::Labels labels{{"model", model}};
  return {.bytes = &bytes_->Add(labels),
          .elements = &elements_->Add(labels),
          .batches = &batches_->Add(labels),
          .nonfinite = &nonfinite_->Add(labels)};
}

void Metrics::AddModel(const std::string& model) {
  absl::MutexLock lock(&mu_);
  CountersLocked(model);
}

Metrics::Ingest Metrics::IngestOf(const std::string& model) const {
  const prometheus::Labels labels{{"model", model}};
  absl::MutexLock lock(&mu_);
  // Has first: Add would create the series of a model that has none (deleted meanwhile).
  if (!bytes_->Has(labels) || !batches_->Has(labels)) return {};
  return {.bytes = bytes_->Add(labels).Value(), .batches = batches_->Add(labels).Value()};
}

void Metrics::AddBatches(const std::string& model, const BatchStats& applied) {
  absl::MutexLock lock(&mu_);
  const ModelCounters counters = CountersLocked(model);
  counters.bytes->Increment(static_cast<double>(applied.bytes));
  counters.elements->Increment(static_cast<double>(applied.elements));
  counters.batches->Increment(static_cast<double>(applied.batches));
  counters.nonfinite->Increment(static_cast<double>(applied.nonfinite));
}

void Metrics::RemoveModel(const std::string& model) {
  absl::MutexLock lock(&mu_);
  const ModelCounters counters = CountersLocked(model);
  bytes_->Remove(counters.bytes);
  elements_->Remove(counters.elements);
  batches_->Remove(counters.batches);
  nonfinite_->Remove(counters.nonfinite);
}

void Metrics::ObserveRpc(absl::string_view method, double seconds) {
  // Family::Add returns the existing series for known labels; the buckets apply to new ones.
  rpc_duration_->Add({{"method", std::string(method)}}, rpc_buckets_).Observe(seconds);
}

void Metrics::RpcFailed(absl::string_view method, absl::StatusCode code) {
  // Codes are a closed set of 16 names, methods the service's 14: the labels stay bounded.
  rpc_errors_->Add({{"method", std::string(method)}, {"code", absl::StatusCodeToString(code)}})
      .Increment();
}

}  // namespace qcal::server
