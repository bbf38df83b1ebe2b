// A quantizer's calibrator wherever its state lives, and the backend that makes calibrators for
// the server's --device: CPU memory (kernels::MaxCalibrator, kernels::Histogram; cpu_calibrator.h)
// or a GPU (kernels/cuda; cuda_calibrator.h). Both give the same numbers; QuantizerState holds
// one calibrator and serialises calls to it.
//
//   std::shared_ptr<const CalibratorBackend> backend = CpuBackend();
//   QCAL_ASSIGN_OR_RETURN(std::unique_ptr<Calibrator> calibrator, backend->Create(spec));
//   QCAL_ASSIGN_OR_RETURN(kernels::CollectStats stats, calibrator->Collect(values, shape));
#ifndef QCAL_SERVER_DEVICE_CALIBRATOR_H_
#define QCAL_SERVER_DEVICE_CALIBRATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/collect_stats.h"
#include "kernels/histogram.h"
#include "kernels/mergeable_histogram.h"
#include "server/tables/compute_amax.h"
#include "server/tables/quantizer_spec.h"

namespace qcal::server {

// A copy of a histogram calibrator's state (GetHistogram).
struct HistogramSnapshot {
  std::vector<uint64_t> counts{};
  // counts.size() + 1 float32 edges (empty while counts is).
  std::vector<float> edges{};
  float abs_max = 0.0f;
  uint64_t total = 0;
  int64_t nonfinite = 0;
};

// A max calibrator's state: the running max of |x|, one value per tensor or one per channel (in
// channel order), each finite and >= 0.
struct MaxValues {
  std::vector<float> amax{};
  friend bool operator==(const MaxValues&, const MaxValues&) = default;
};

// A calibrator's state as it leaves the device, to be saved, shipped or merged: nothing (before
// the first batch), a max calibrator's values, or a histogram in its layout.
using CalibratorState = std::variant<std::monostate, MaxValues, kernels::MergeableState,
                                     kernels::Histogram::ReferenceState>;

// The shape of a batch that holds `count` maxima along `axis` (nullopt: one value, per tensor),
// every other dimension 1: folding it into a max calibrator with that axis takes the elementwise
// max of its state and the values (which are their own |x|), bit for bit.
inline std::vector<int64_t> MaxValuesShape(std::optional<int> axis, int64_t count) {
  if (!axis.has_value()) return {count};
  // A negative axis counts from the end: rank -axis puts it first.
  const int rank = *axis < 0 ? -*axis : *axis + 1;
  std::vector<int64_t> shape(static_cast<size_t>(rank), 1);
  shape[*axis < 0 ? 0 : static_cast<size_t>(*axis)] = count;
  return shape;
}

class Calibrator {
 public:
  virtual ~Calibrator() = default;

  // Folds one decoded batch (float32, row-major, prod(shape) values) into the state, all or
  // nothing. Errors: those of kernels::MaxCalibrator::Collect or kernels::Histogram::Collect (a
  // histogram ignores the shape); RESOURCE_EXHAUSTED or INTERNAL for a device failure.
  virtual absl::StatusOr<kernels::CollectStats> Collect(std::span<const float> values,
                                                        std::span<const int64_t> shape) = 0;

  // Max calibrators: the number of amax values held (1 per tensor, or one per channel), 0 before
  // the first batch. Histogram calibrators: 0.
  virtual int64_t amax_size() const = 0;

  // Histogram calibrators: the bins the histogram holds now (0 before its first non-zero value;
  // growth appends bins, coarsening merges them). Max calibrators: 0.
  virtual int64_t bins() const = 0;

  // A max calibrator's amax (`params` and the number format ignored), or a histogram's one amax
  // by `params` (normalized), as compute_amax.h's HistogramAmax. `cancelled` (null: never) is
  // polled by the search (kernels::SearchOptions::cancelled). Errors: FAILED_PRECONDITION without
  // data; those of HistogramAmax (CANCELLED included); INTERNAL for a device failure.
  virtual absl::StatusOr<std::vector<float>> Amax(
      const MethodParams& params, int num_bits, bool is_unsigned, kernels::QuantFormat format,
      absl::string_view quantizer, const std::function<bool()>* cancelled = nullptr) const = 0;

  // A frozen copy of the state whose Amax gives the same result and runs without the owner's
  // lock, so that a long search does not hold up Record; nullptr where a copy would cost more
  // than the search (a GPU's histogram searches in device memory, in milliseconds).
  virtual std::unique_ptr<Calibrator> Snapshot() const { return nullptr; }

  // A histogram's state (nonfinite left 0: the caller counts those). FAILED_PRECONDITION for a
  // max calibrator; INTERNAL for a device failure.
  virtual absl::StatusOr<HistogramSnapshot> Histogram() const = 0;

  // Drops the collected state.
  virtual void Reset() = 0;

  // The state, copied out: std::monostate before the first batch, MaxValues for a max
  // calibrator, the histogram's layout's state otherwise. INTERNAL for a device failure.
  virtual absl::StatusOr<CalibratorState> Export() const = 0;

  // Adds a canonical mergeable-layout histogram (a trainer's pre-aggregated counts or a saved
  // state) exactly, as kernels::Histogram::MergeMergeable: FAILED_PRECONDITION for a max
  // calibrator or the reference layout; INVALID_ARGUMENT for a state that is not canonical for the
  // spec's num_bins; OUT_OF_RANGE when a count would overflow. State unchanged on error.
  virtual absl::Status MergeMergeable(const kernels::MergeableState& state) = 0;

  // Folds maxima in with max (elementwise): `amax` holds one value per tensor, or one per
  // channel, each finite and >= 0, their count already checked against earlier batches.
  // FAILED_PRECONDITION for a histogram; INVALID_ARGUMENT as Collect for a changed channel count.
  // State unchanged on error.
  virtual absl::Status MergeMax(std::span<const float> amax) = 0;

  // Replaces the state with a saved reference-layout histogram (kernels::Histogram::
  // RestoreReference, whose INVALID_ARGUMENT names what is inconsistent). FAILED_PRECONDITION for
  // a max calibrator or the mergeable layout. State unchanged on error.
  virtual absl::Status RestoreReference(const kernels::Histogram::ReferenceState& state) = 0;
};

// Bytes of device memory (CalibratorBackend::Memory).
struct DeviceMemory {
  // Held by this server's calibrators and their staging buffers.
  int64_t allocated = 0;
  int64_t free = 0;
  int64_t total = 0;
};

// Makes the calibrators of one device. Thread-safe; calibrators may outlive no backend (each
// keeps what it needs alive).
class CalibratorBackend {
 public:
  virtual ~CalibratorBackend() = default;

  // "cpu" or "cuda".
  virtual std::string device() const = 0;
  // The device's name for /metrics: "cpu", or the GPU's ("NVIDIA H200").
  virtual std::string device_name() const = 0;
  // Device memory now; nullopt where there is no device memory to speak of (the CPU) or it
  // cannot be read.
  virtual std::optional<DeviceMemory> Memory() const = 0;

  // A calibrator for `spec` (already checked by ValidateSpec): max or histogram, per its kind.
  virtual absl::StatusOr<std::unique_ptr<Calibrator>> Create(const QuantizerSpec& spec) const = 0;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_DEVICE_CALIBRATOR_H_
