// One quantizer's calibration state: its spec, its calibrator (a max calibrator or a histogram, in
// CPU or GPU memory: calibrator.h) and what it has taken in. Thread-safe; each batch is applied
// atomically under the quantizer's own mutex, so concurrent Record streams lose nothing.
//
//   QCAL_ASSIGN_OR_RETURN(auto state, QuantizerState::Create(spec, /*declared=*/false));
//   QCAL_RETURN_IF_ERROR(state->CheckShape(shape));          // before touching anything
//   QCAL_ASSIGN_OR_RETURN(BatchStats applied, state->Apply(values, shape, bytes));
#ifndef QCAL_SERVER_CORE_QUANTIZER_STATE_H_
#define QCAL_SERVER_CORE_QUANTIZER_STATE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/model_limits.h"
#include "server/core/partial_state.h"
#include "server/core/state_budget.h"
#include "server/device/calibrator.h"
#include "server/storage/model_snapshot.h"
#include "server/tables/amax_table.h"
#include "server/tables/compute_amax.h"
#include "server/tables/quantizer_spec.h"

namespace qcal::server {

// What one or more applied batches brought.
struct BatchStats {
  int64_t batches = 0;
  int64_t elements = 0;
  // NaN and +-inf: counted and left out of the calibrator.
  int64_t nonfinite = 0;
  // Bytes on the wire (in the batch's dtype; a partial state's serialized size).
  int64_t bytes = 0;
  // Of the messages applied, those with a partial state (each counts its own batches above).
  // Record streams count it; a quantizer's statistics leave it 0.
  int64_t partials = 0;

  BatchStats& operator+=(const BatchStats& other);
  friend bool operator==(const BatchStats&, const BatchStats&) = default;
};

// `have` + `more`, counter by counter (all >= 0 in both): OUT_OF_RANGE, "<where><counter>: a + b
// would overflow a 64-bit counter", when one would pass 2^63 - 1. (operator+= does not check:
// use it only where the sum is bounded, and this for counters a client declares, as partial
// states and state files do.)
absl::StatusOr<BatchStats> AddBatchStats(const BatchStats& have, const BatchStats& more,
                                         absl::string_view where);

// Checks a batch of `shape` against a quantizer's spec: INVALID_ARGUMENT when a per-channel axis
// is outside the rank or the channel count differs from the `channels` of earlier batches (0:
// none yet); RESOURCE_EXHAUSTED when a max calibrator would keep more than `max_channels`.
absl::Status CheckBatchShape(const QuantizerSpec& spec, int64_t max_channels, int64_t channels,
                             std::span<const int64_t> shape);

// The bytes a quantizer of `spec` is charged (--max-state-bytes) when its calibrator holds `bins`
// histogram bins or `amax_size` maxima: kQuantizerBytes plus twice the name (its spec and its
// model's map key), kBytesPerBin a bin plus one more edge, 4 bytes a maximum.
inline constexpr int64_t kQuantizerBytes = 1024;
// A uint64 count and a float32 edge, doubled: a grown std::vector may hold up to twice its size.
inline constexpr int64_t kBytesPerBin = 24;
int64_t QuantizerStateBytes(const QuantizerSpec& spec, int64_t bins, int64_t amax_size);
// The most bins a histogram of `spec` can ever hold: 2 * num_bins in the mergeable layout; in the
// reference layout kernels::Histogram's bin limit, max(2^20, num_bins), past which growth
// coarsens. 0 for a max calibrator.
int64_t MaxHistogramBins(const QuantizerSpec& spec);

class QuantizerState {
 public:
  // INVALID_ARGUMENT when ValidateSpec refuses `spec`; RESOURCE_EXHAUSTED when it passes
  // `limits` (CheckSpecLimits) or limits.state_budget lacks its QuantizerStateBytes; the backend's
  // errors. The state stays charged to limits.state_budget for what it holds: growth reserves its
  // worst case first (Apply, ApplyPartial, Restore) and the charge then settles to the bytes held.
  // `declared`: declared at CreateModel (kept by ResetModel) rather than created by a first Record.
  // The calibrator comes from `backend` (the CPU's by default).
  static absl::StatusOr<std::unique_ptr<QuantizerState>> Create(QuantizerSpec spec, bool declared);
  static absl::StatusOr<std::unique_ptr<QuantizerState>> Create(QuantizerSpec spec, bool declared,
                                                                const CalibratorBackend& backend,
                                                                const ModelLimits& limits = {});

  QuantizerState(const QuantizerState&) = delete;
  QuantizerState& operator=(const QuantizerState&) = delete;

  const QuantizerSpec& spec() const { return spec_; }
  bool declared() const { return declared_; }

  // Checks a batch of `shape` against the spec, changing nothing: INVALID_ARGUMENT when the
  // per-channel axis is outside the rank, or the channel count differs from earlier batches;
  // RESOURCE_EXHAUSTED when the channel count is above the limits' max_channels.
  absl::Status CheckShape(std::span<const int64_t> shape) const;

  // Folds one decoded batch (float32, row-major, prod(shape) values; `bytes` is its size on the
  // wire) into the calibrator and the statistics, all or nothing.
  // Errors (state unchanged): those of CheckShape; RESOURCE_EXHAUSTED when device memory runs out,
  // or when --max-state-bytes lacks room for the batch's worst growth (a histogram:
  // MaxHistogramBins; a max calibrator: its channels); INTERNAL for a device failure. A histogram
  // whose range outgrows its bin limit is coarsened (kernels/histogram.h), not refused.
  absl::StatusOr<BatchStats> Apply(std::span<const float> values, std::span<const int64_t> shape,
                                   int64_t bytes);

  // Merges a pre-aggregated batch (PartialState) into the calibrator and the statistics, all
  // or nothing: batches, elements and nonfinite add the partial's, bytes adds `bytes` (its size on
  // the wire); the result has partials 1.
  // Errors (state unchanged): those of CheckPartialState; OUT_OF_RANGE when a counter or a
  // histogram count would overflow 64 bits; RESOURCE_EXHAUSTED as Apply's for --max-state-bytes;
  // INTERNAL for a device failure.
  absl::StatusOr<BatchStats> ApplyPartial(const PartialState& partial, int64_t bytes);

  // The spec, counters and calibrator state, copied under the quantizer's lock.
  absl::StatusOr<QuantizerSnapshot> Export() const;

  // A quantizer holding `snapshot`'s state and counters, all checked first:
  // INVALID_ARGUMENT when ValidateSpec refuses the spec or the state is inconsistent (a state of
  // the other kind or layout, counters negative or nonfinite > elements, state without batches or
  // batches without state, maxima negative, not finite or of a count the axis does not allow, a
  // histogram that ValidateMergeableState or RestoreReference refuses, histogram counts that do
  // not add up to elements - nonfinite); RESOURCE_EXHAUSTED for limits the spec passes or more
  // channels than limits.max_channels; the backend's errors.
  static absl::StatusOr<std::unique_ptr<QuantizerState>> Restore(const QuantizerSnapshot& snapshot,
                                                                 const CalibratorBackend& backend,
                                                                 const ModelLimits& limits);

  BatchStats stats() const;

  // The calibrator's sizes now (Calibrator::bins and amax_size): a histogram's current bins, a
  // max calibrator's amax values (the channel count per channel); 0 for the other kind and
  // before data.
  struct Sizes {
    int64_t bins = 0;
    int64_t amax_size = 0;
  };
  Sizes sizes() const;

  // FAILED_PRECONDITION for a max calibrator (it keeps no histogram); INTERNAL for a device
  // failure.
  absl::StatusOr<HistogramSnapshot> Histogram() const;

  // This quantizer's entry of an amax table, by `params` (already normalized) for a histogram
  // calibrator; a max calibrator always reports its max (method "max"). The search runs on a
  // snapshot taken under the lock (Calibrator::Snapshot), so Record is not held up meanwhile.
  // `cancelled` (null: never) is polled by the search.
  // Errors: FAILED_PRECONDITION without data; those of HistogramAmax (CANCELLED included).
  absl::StatusOr<QuantizerAmax> ComputeAmax(const MethodParams& params,
                                            const std::function<bool()>* cancelled = nullptr) const;

  // Drops the collected data and statistics; the spec stays.
  void Reset();

  // Bytes charged to the state budget now (QuantizerStateBytes of what it holds).
  int64_t charged_bytes() const;

 private:
  QuantizerState(QuantizerSpec spec, bool declared, std::unique_ptr<Calibrator> calibrator,
                 int64_t max_channels, StateBudget::Charge charge);

  // Grows the charge to `bytes` ahead of an operation that may grow the state that far: the
  // budget's RESOURCE_EXHAUSTED, naming the quantizer, when it has no room.
  absl::Status ReserveLocked(int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets the charge to what the calibrator holds now.
  void SettleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status CheckShapeLocked(std::span<const int64_t> shape) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  const QuantizerSpec spec_;
  const bool declared_;
  const int64_t max_channels_;

  mutable absl::Mutex mu_;
  // A max calibrator or a histogram, by spec_.calibrator.
  const std::unique_ptr<Calibrator> calibrator_ ABSL_PT_GUARDED_BY(mu_);
  BatchStats stats_ ABSL_GUARDED_BY(mu_);
  StateBudget::Charge charge_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_QUANTIZER_STATE_H_
