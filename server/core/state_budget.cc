#include "server/core/state_budget.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace qcal::server {

StateBudget::Charge::Charge(Charge&& other) noexcept
    : budget_(other.budget_), bytes_(std::exchange(other.bytes_, 0)) {}

StateBudget::Charge& StateBudget::Charge::operator=(Charge&& other) noexcept {
  if (this != &other) {
    Settle(0);
    budget_ = other.budget_;
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

absl::Status StateBudget::Charge::Resize(int64_t bytes, absl::string_view what) {
  if (bytes <= bytes_ || budget_ == nullptr) {
    Settle(bytes);
    return absl::OkStatus();
  }
  const int64_t more = bytes - bytes_;
  if (!budget_->TryTake(more)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, " needs ", more, " more bytes of model state, but the server's models hold ",
        budget_->used_bytes(), " of its --max-state-bytes ", budget_->limit_bytes(),
        "; delete or reset models you are done with (DeleteModel, ResetModel), or raise "
        "--max-state-bytes"));
  }
  bytes_ = bytes;
  return absl::OkStatus();
}

void StateBudget::Charge::Settle(int64_t bytes) {
  if (budget_ != nullptr) {
    if (bytes > bytes_) budget_->Force(bytes - bytes_);
    if (bytes < bytes_) budget_->Give(bytes_ - bytes);
  }
  bytes_ = bytes;
}

bool StateBudget::TryTake(int64_t bytes) {
  int64_t used = used_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_bytes_ - used) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

}  // namespace qcal::server
