#include "server/metrics.h"

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

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
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
      active_streams_(&prometheus::BuildGauge()
                           .Name("qcal_record_streams_active")
                           .Help("Record streams open now")
                           .Register(*registry_)
                           .Add({})),
      rpc_buckets_(RpcBuckets()) {}

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

}  // namespace qcal::server
