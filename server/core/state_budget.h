// The server-wide budget for what models hold in memory (--max-state-bytes): their calibration
// state (histogram bins, per-channel maxima), stored amax tables and uploaded ONNX models. Every
// holder owns a Charge of the bytes it holds; a Charge grows only when the budget has room, so
// the sum of all charges never passes the limit (README, "Limits", says what each holder counts).
//
//   StateBudget budget(int64_t{4} << 30);
//   StateBudget::Charge charge(&budget);
//   QCAL_RETURN_IF_ERROR(charge.Resize(worst_case, "quantizer 'q'"));   // before growing
//   ...                                                                  // grow
//   charge.Settle(actual);                                               // what it holds now
//
// Thread-safe (one atomic counter); a Charge itself is not: its owner serialises its calls. A
// budget must outlive every Charge of it (CalibrationCore owns the server's, and outlives its
// models).
#ifndef QCAL_SERVER_CORE_STATE_BUDGET_H_
#define QCAL_SERVER_CORE_STATE_BUDGET_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace qcal::server {

class StateBudget {
 public:
  // Bytes held against one budget until Settle(0) or destruction. Move-only. A Charge of no
  // budget (null) counts its bytes and refuses nothing.
  class Charge {
   public:
    Charge() = default;
    explicit Charge(StateBudget* budget) : budget_(budget) {}
    ~Charge() { Settle(0); }
    Charge(Charge&& other) noexcept;
    Charge& operator=(Charge&& other) noexcept;
    Charge(const Charge&) = delete;
    Charge& operator=(const Charge&) = delete;

    int64_t bytes() const { return bytes_; }
    // Makes this charge hold `bytes` (>= 0). Growing takes the difference from the budget, or
    // returns RESOURCE_EXHAUSTED naming `what`, the bytes missing and --max-state-bytes, holding
    // what it held. Shrinking never fails.
    absl::Status Resize(int64_t bytes, absl::string_view what);
    // Makes this charge hold `bytes` (>= 0) even past the limit: after an operation whose worst
    // case Resize reserved, to hold what it really uses (at most that worst case).
    void Settle(int64_t bytes);

   private:
    StateBudget* budget_ = nullptr;
    int64_t bytes_ = 0;
  };

  // `limit_bytes` >= 1.
  explicit StateBudget(int64_t limit_bytes) : limit_bytes_(limit_bytes) {}
  StateBudget(const StateBudget&) = delete;
  StateBudget& operator=(const StateBudget&) = delete;

  int64_t limit_bytes() const { return limit_bytes_; }
  // Bytes charged now, in all.
  int64_t used_bytes() const { return used_.load(std::memory_order_relaxed); }

 private:
  // Takes `bytes` (> 0) if they fit; false otherwise.
  bool TryTake(int64_t bytes);
  void Give(int64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }
  void Force(int64_t bytes) { used_.fetch_add(bytes, std::memory_order_relaxed); }

  const int64_t limit_bytes_;
  std::atomic<int64_t> used_{0};
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_STATE_BUDGET_H_
