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
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/collect_stats.h"
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

  // A max calibrator's amax (`params` ignored), or a histogram's one amax by `params`
  // (normalized), as compute_amax.h's HistogramAmax. `cancelled` (null: never) is polled by the
  // search (kernels::SearchOptions::cancelled). Errors: FAILED_PRECONDITION without data; those of
  // HistogramAmax (CANCELLED included); INTERNAL for a device failure.
  virtual absl::StatusOr<std::vector<float>> Amax(
      const MethodParams& params, int num_bits, bool is_unsigned, absl::string_view quantizer,
      const std::function<bool()>* cancelled = nullptr) const = 0;

  // A frozen copy of the state whose Amax gives the same result and runs without the owner's
  // lock, so that a long search does not hold up Record; nullptr where a copy would cost more
  // than the search (a GPU's histogram searches in device memory, in milliseconds).
  virtual std::unique_ptr<Calibrator> Snapshot() const { return nullptr; }

  // A histogram's state (nonfinite left 0: the caller counts those). FAILED_PRECONDITION for a
  // max calibrator; INTERNAL for a device failure.
  virtual absl::StatusOr<HistogramSnapshot> Histogram() const = 0;

  // Drops the collected state.
  virtual void Reset() = 0;
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
