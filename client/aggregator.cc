#include "client/aggregator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/absl_string_view.h"
#include "client/status_macros.h"
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

absl::StatusOr<std::optional<v1::PartialState>> Aggregator::Add(std::string_view quantizer,
                                                                const TensorView& tensor) {
  absl::StatusOr<PartialTarget> target = Target(quantizer);
  if (!target.ok()) return Named(model_, quantizer, target.status());
  // Counted without the lock, so that threads recording different tensors count in parallel.
  absl::StatusOr<v1::PartialState> counted =
      target->histogram ? CountHistogramPartial(tensor, target->num_bins, target->skip_zeros)
                        : CountMaxPartial(tensor, target->axis);
  if (!counted.ok()) return Named(model_, quantizer, counted.status());

  absl::MutexLock lock(&mu_);
  auto it = pending_.find(quantizer);
  if (it == pending_.end()) it = pending_.emplace(std::string(quantizer), Pending{}).first;
  Pending& pending = it->second;
  if (absl::Status merged = MergePartial(pending.state, *counted, target->num_bins); !merged.ok()) {
    return Named(model_, quantizer, merged);
  }
  if (send_every_ <= 0 || ++pending.calls < send_every_) return std::nullopt;
  v1::PartialState ready = std::move(pending.state);
  pending_.erase(it);
  return ready;
}

std::vector<std::pair<std::string, v1::PartialState>> Aggregator::TakeAll() {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, v1::PartialState>> all;
  for (auto& [quantizer, pending] : pending_) {
    if (pending.state.batches() > 0) all.emplace_back(quantizer, std::move(pending.state));
  }
  pending_.clear();
  return all;
}

}  // namespace qcal::internal
