#include "client/aggregator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/status_macros.h"
#include "common/absl_string_view.h"
#include "qcal/partial_state.h"

namespace qcal::internal {
namespace {

// `status` with "model 'm', quantizer 'q': " in front of its message.
absl::Status Named(const std::string& model, std::string_view quantizer,
                   const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("model '", model, "', quantizer '",
                                                  ToAbsl(quantizer), "': ", status.message()));
}

}  // namespace

Aggregator::Aggregator(std::string model, int64_t send_every,
                       std::function<absl::StatusOr<v1::ModelInfo>()> get_model)
    : model_(std::move(model)), send_every_(send_every), get_model_(std::move(get_model)) {}

absl::StatusOr<PartialTarget> Aggregator::Target(std::string_view quantizer) {
  absl::MutexLock lock(&info_mu_);
  if (!info_.has_value()) {
    QCAL_CLIENT_ASSIGN_OR_RETURN(info_, get_model_());
  }
  return PartialTargetFor(*info_, quantizer);
}

v1::PartialState Aggregator::Pending::Take() {
  v1::PartialState state = histogram.has_value() ? histogram->Take() : std::move(max);
  max = v1::PartialState();
  calls = 0;
  return state;
}

Aggregator::Pending& Aggregator::PendingFor(std::string_view quantizer) {
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(quantizer);
  if (it == pending_.end()) {
    it = pending_.emplace(std::string(quantizer), std::make_unique<Pending>()).first;
  }
  return *it->second;
}

absl::StatusOr<std::optional<v1::PartialState>> Aggregator::Add(std::string_view quantizer,
                                                                const TensorView& tensor) {
  absl::StatusOr<PartialTarget> target = Target(quantizer);
  if (!target.ok()) return Named(model_, quantizer, target.status());
  // Each quantizer counts under its own lock: threads recording different quantizers count in
  // parallel.
  Pending& pending = PendingFor(quantizer);
  absl::MutexLock lock(&pending.mu);
  if (target->histogram) {
    if (!pending.histogram.has_value()) {
      absl::StatusOr<HistogramPartialCounter> counter =
          HistogramPartialCounter::Create(target->num_bins, target->skip_zeros);
      if (!counter.ok()) return Named(model_, quantizer, counter.status());
      pending.histogram.emplace(*std::move(counter));
    }
    if (absl::Status added = pending.histogram->Add(tensor); !added.ok()) {
      return Named(model_, quantizer, added);
    }
  } else {
    absl::StatusOr<v1::PartialState> counted = CountMaxPartial(tensor, target->axis);
    if (!counted.ok()) return Named(model_, quantizer, counted.status());
    if (absl::Status merged = MergePartial(pending.max, *counted, target->num_bins); !merged.ok()) {
      return Named(model_, quantizer, merged);
    }
  }
  if (send_every_ <= 0 || ++pending.calls < send_every_) return std::nullopt;
  return pending.Take();
}

std::vector<std::pair<std::string, v1::PartialState>> Aggregator::TakeAll() {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, v1::PartialState>> all;
  for (auto& [quantizer, pending] : pending_) {
    absl::MutexLock pending_lock(&pending->mu);
    v1::PartialState state = pending->Take();
    if (state.batches() > 0) all.emplace_back(quantizer, std::move(state));
  }
  return all;
}

}  // namespace qcal::internal
