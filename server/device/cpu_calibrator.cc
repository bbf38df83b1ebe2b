#include "server/device/cpu_calibrator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/histogram.h"
#include "kernels/max_calibrator.h"
#include "server/base/status_util.h"

namespace qcal::server {
namespace {

absl::Status NotAHistogram() {
  return absl::FailedPreconditionError("a max calibrator keeps no histogram");
}

class CpuMaxCalibrator : public Calibrator {
 public:
  explicit CpuMaxCalibrator(std::optional<int> axis) : axis_(axis), calibrator_(axis) {}

  absl::StatusOr<kernels::CollectStats> Collect(std::span<const float> values,
                                                std::span<const int64_t> shape) override {
    return calibrator_.Collect(values, shape);
  }
  int64_t amax_size() const override { return static_cast<int64_t>(calibrator_.amax().size()); }
  int64_t bins() const override { return 0; }
  absl::StatusOr<std::vector<float>> Amax(const MethodParams&, int, bool, kernels::QuantFormat,
                                          absl::string_view,
                                          const std::function<bool()>*) const override {
    return calibrator_.amax();
  }
  std::unique_ptr<Calibrator> Snapshot() const override {
    return std::unique_ptr<Calibrator>(new CpuMaxCalibrator(*this));
  }
  absl::StatusOr<HistogramSnapshot> Histogram() const override { return NotAHistogram(); }
  void Reset() override { calibrator_.Reset(); }

  absl::StatusOr<CalibratorState> Export() const override {
    if (calibrator_.empty()) return CalibratorState{};
    return CalibratorState{MaxValues{.amax = calibrator_.amax()}};
  }
  absl::Status MergeMergeable(const kernels::MergeableState&) override { return NotAHistogram(); }
  absl::Status MergeMax(std::span<const float> amax) override {
    const std::vector<int64_t> shape = MaxValuesShape(axis_, static_cast<int64_t>(amax.size()));
    return calibrator_.Collect(amax, shape).status();
  }
  absl::Status RestoreReference(const kernels::Histogram::ReferenceState&) override {
    return NotAHistogram();
  }

 private:
  // Constant after construction.
  std::optional<int> axis_;
  kernels::MaxCalibrator calibrator_;
};

class CpuHistogramCalibrator : public Calibrator {
 public:
  explicit CpuHistogramCalibrator(kernels::Histogram::Options options)
      : histogram_(std::move(options)) {}

  absl::StatusOr<kernels::CollectStats> Collect(std::span<const float> values,
                                                std::span<const int64_t>) override {
    return histogram_.Collect(values);
  }
  int64_t amax_size() const override { return 0; }
  int64_t bins() const override { return static_cast<int64_t>(histogram_.Counts().size()); }
  absl::StatusOr<std::vector<float>> Amax(const MethodParams& params, int num_bits,
                                          bool is_unsigned, kernels::QuantFormat format,
                                          absl::string_view quantizer,
                                          const std::function<bool()>* cancelled) const override {
    QCAL_ASSIGN_OR_RETURN(float amax, HistogramAmax(histogram_, params, num_bits, is_unsigned,
                                                    format, quantizer, cancelled));
    return std::vector<float>{amax};
  }
  // A copy of the counts and edges: at most tens of MiB, copied in milliseconds, where an mse or
  // entropy search over them may take much longer.
  std::unique_ptr<Calibrator> Snapshot() const override {
    return std::unique_ptr<Calibrator>(new CpuHistogramCalibrator(*this));
  }
  absl::StatusOr<HistogramSnapshot> Histogram() const override {
    HistogramSnapshot out;
    out.counts.assign(histogram_.Counts().begin(), histogram_.Counts().end());
    out.edges.assign(histogram_.Edges().begin(), histogram_.Edges().end());
    out.abs_max = histogram_.abs_max();
    out.total = histogram_.total();
    return out;
  }
  void Reset() override { histogram_.Reset(); }

  absl::StatusOr<CalibratorState> Export() const override {
    if (histogram_.empty()) return CalibratorState{};
    if (histogram_.options().layout == kernels::HistogramLayout::kMergeable) {
      QCAL_ASSIGN_OR_RETURN(kernels::MergeableState state, histogram_.ExportMergeable());
      return CalibratorState{std::move(state)};
    }
    QCAL_ASSIGN_OR_RETURN(kernels::Histogram::ReferenceState state, histogram_.ExportReference());
    return CalibratorState{std::move(state)};
  }
  absl::Status MergeMergeable(const kernels::MergeableState& state) override {
    return histogram_.MergeMergeable(state);
  }
  absl::Status MergeMax(std::span<const float>) override {
    return absl::FailedPreconditionError("a histogram calibrator keeps no running max");
  }
  absl::Status RestoreReference(const kernels::Histogram::ReferenceState& state) override {
    return histogram_.RestoreReference(state);
  }

 private:
  kernels::Histogram histogram_;
};

class CpuCalibratorBackend : public CalibratorBackend {
 public:
  std::string device() const override { return "cpu"; }
  std::string device_name() const override { return "cpu"; }
  std::optional<DeviceMemory> Memory() const override { return std::nullopt; }

  absl::StatusOr<std::unique_ptr<Calibrator>> Create(const QuantizerSpec& spec) const override {
    if (spec.calibrator == CalibratorKind::kMax) {
      return std::unique_ptr<Calibrator>(new CpuMaxCalibrator(spec.axis));
    }
    kernels::Histogram::Options options;
    options.num_bins = spec.num_bins;
    options.skip_zeros = spec.skip_zeros;
    options.layout = spec.layout;
    return std::unique_ptr<Calibrator>(new CpuHistogramCalibrator(std::move(options)));
  }
};

}  // namespace

std::shared_ptr<const CalibratorBackend> CpuBackend() {
  static const std::shared_ptr<const CalibratorBackend>* backend =
      new std::shared_ptr<const CalibratorBackend>(std::make_shared<CpuCalibratorBackend>());
  return *backend;
}

}  // namespace qcal::server
