// A session's pre-aggregation (SessionOptions::aggregate): Record() counts each tensor on the
// caller's thread into its quantizer's partial state (qcal/partial_state.h) instead of queuing it,
// and hands the state over to be sent every `send_every` Record() calls of that quantizer, and at
// Flush().
#ifndef QCAL_CLIENT_AGGREGATOR_H_
#define QCAL_CLIENT_AGGREGATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "qcal/partial_state.h"
#include "qcal/tensor.h"
#include "qcal/v1/calibration.pb.h"

namespace qcal::internal {

class Aggregator {
 public:
  // `get_model` fetches the model's configuration (GetModel); it is called at the first Add()
  // and its answer kept (a failed call is retried at the next Add()). `send_every` 0: states go
  // only at TakeAll().
  Aggregator(std::string model, int64_t send_every,
             std::function<absl::StatusOr<v1::ModelInfo>()> get_model);

  // Counts `tensor` into `quantizer`'s state. Returns the state to send (and clears it) when this
  // was the quantizer's send_every-th Add() since its last send; nullopt otherwise. Errors (the
  // state unchanged): GetModel's, TargetFor's, and the counting's INVALID_ARGUMENT (byte count,
  // empty tensor, axis outside the rank, a channel count that differs from earlier tensors),
  // each naming the model and quantizer.
  absl::StatusOr<std::optional<v1::PartialState>> Add(std::string_view quantizer,
                                                      const TensorView& tensor);

  // Every non-empty state, by quantizer name, leaving none.
  std::vector<std::pair<std::string, v1::PartialState>> TakeAll();

 private:
  // One quantizer's state since its last send. Entries stay once made (a send empties them), so
  // a thread counting into one holds no dangling pointer.
  struct Pending {
    absl::Mutex mu;
    // Histogram quantizers: a counter that bins each tensor in one pass while the exponent holds.
    std::optional<HistogramPartialCounter> histogram ABSL_GUARDED_BY(mu);
    // Max quantizers.
    v1::PartialState max ABSL_GUARDED_BY(mu);
    int64_t calls ABSL_GUARDED_BY(mu) = 0;

    // The state so far, leaving none.
    v1::PartialState Take() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  };

  // The entry of `quantizer`, made on first use.
  Pending& PendingFor(std::string_view quantizer) ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<PartialTarget> Target(std::string_view quantizer);

  // Constant after construction.
  const std::string model_;
  const int64_t send_every_;
  const std::function<absl::StatusOr<v1::ModelInfo>()> get_model_;

  absl::Mutex info_mu_;
  std::optional<v1::ModelInfo> info_ ABSL_GUARDED_BY(info_mu_);

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Pending>, std::less<>> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_AGGREGATOR_H_
