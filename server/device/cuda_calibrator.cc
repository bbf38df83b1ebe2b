#include "server/device/cuda_calibrator.h"

#include <utility>

#include "kernels/cuda/amax_search.h"
#include "kernels/cuda/context.h"
#include "kernels/cuda/histogram.h"
#include "kernels/cuda/max_calibrator.h"
#include "server/base/status_util.h"

namespace qcal::server {
namespace {

namespace cuda = kernels::cuda;

absl::Status NotAHistogram() {
  return absl::FailedPreconditionError("a max calibrator keeps no histogram");
}

class CudaMaxCalibrator : public Calibrator {
 public:
  CudaMaxCalibrator(std::unique_ptr<cuda::MaxCalibrator> calibrator, std::optional<int> axis)
      : axis_(axis), calibrator_(std::move(calibrator)) {}

  absl::StatusOr<kernels::CollectStats> Collect(std::span<const float> values,
                                                std::span<const int64_t> shape) override {
    return calibrator_->Collect(values, shape);
  }
  int64_t amax_size() const override { return calibrator_->amax_size(); }
  int64_t bins() const override { return 0; }
  absl::StatusOr<std::vector<float>> Amax(const MethodParams&, int, bool, kernels::QuantFormat,
                                          absl::string_view,
                                          const std::function<bool()>*) const override {
    return calibrator_->amax();
  }
  absl::StatusOr<HistogramSnapshot> Histogram() const override { return NotAHistogram(); }
  void Reset() override { calibrator_->Reset(); }

  absl::StatusOr<CalibratorState> Export() const override {
    if (calibrator_->empty()) return CalibratorState{};
    QCAL_ASSIGN_OR_RETURN(std::vector<float> amax, calibrator_->amax());
    return CalibratorState{MaxValues{.amax = std::move(amax)}};
  }
  absl::Status MergeMergeable(const kernels::MergeableState&) override { return NotAHistogram(); }
  absl::Status MergeMax(std::span<const float> amax) override {
    const std::vector<int64_t> shape = MaxValuesShape(axis_, static_cast<int64_t>(amax.size()));
    return calibrator_->Collect(amax, shape).status();
  }
  absl::Status RestoreReference(const kernels::Histogram::ReferenceState&) override {
    return NotAHistogram();
  }

 private:
  // Constant after construction.
  const std::optional<int> axis_;
  const std::unique_ptr<cuda::MaxCalibrator> calibrator_;
};

class CudaHistogramCalibrator : public Calibrator {
 public:
  explicit CudaHistogramCalibrator(std::unique_ptr<cuda::Histogram> histogram)
      : histogram_(std::move(histogram)) {}

  absl::StatusOr<kernels::CollectStats> Collect(std::span<const float> values,
                                                std::span<const int64_t>) override {
    return histogram_->Collect(values);
  }
  int64_t amax_size() const override { return 0; }
  int64_t bins() const override { return histogram_->num_bins(); }
  absl::StatusOr<std::vector<float>> Amax(const MethodParams& params, int num_bits,
                                          bool is_unsigned, kernels::QuantFormat format,
                                          absl::string_view quantizer,
                                          const std::function<bool()>* cancelled) const override {
    const cuda::Histogram& h = *histogram_;
    const HistogramView view{
        .empty = h.empty(),
        .abs_max = h.abs_max(),
        .bins = h.num_bins(),
        .search = [&h](kernels::AmaxMethod method, const kernels::SearchOptions& options,
                       double percentile) -> absl::StatusOr<kernels::AmaxChoice> {
          switch (method) {
            case kernels::AmaxMethod::kEntropy:
              return cuda::EntropyAmax(h.context(), h.DeviceCounts(), h.Edges(), options);
            case kernels::AmaxMethod::kMse:
              return cuda::MseAmax(h.context(), h.DeviceCounts(), h.Edges(), options);
            case kernels::AmaxMethod::kPercentile:
              return cuda::PercentileAmax(h.context(), h.DeviceCounts(), h.Edges(), percentile);
            case kernels::AmaxMethod::kMax:
              break;
          }
          return absl::InvalidArgumentError("max is not a histogram search");
        }};
    QCAL_ASSIGN_OR_RETURN(float amax, HistogramAmax(view, params, num_bits, is_unsigned, format,
                                                    quantizer, cancelled));
    return std::vector<float>{amax};
  }
  absl::StatusOr<HistogramSnapshot> Histogram() const override {
    HistogramSnapshot out;
    QCAL_ASSIGN_OR_RETURN(out.counts, histogram_->Counts());
    out.edges.assign(histogram_->Edges().begin(), histogram_->Edges().end());
    out.abs_max = histogram_->abs_max();
    out.total = histogram_->total();
    return out;
  }
  void Reset() override { histogram_->Reset(); }

  // The kernels::cuda::Histogram methods twin kernels::Histogram's (same names, same errors).
  absl::StatusOr<CalibratorState> Export() const override {
    if (histogram_->empty()) return CalibratorState{};
    if (histogram_->options().layout == kernels::HistogramLayout::kMergeable) {
      QCAL_ASSIGN_OR_RETURN(kernels::MergeableState state, histogram_->ExportMergeable());
      return CalibratorState{std::move(state)};
    }
    QCAL_ASSIGN_OR_RETURN(kernels::Histogram::ReferenceState state, histogram_->ExportReference());
    return CalibratorState{std::move(state)};
  }
  absl::Status MergeMergeable(const kernels::MergeableState& state) override {
    return histogram_->MergeMergeable(state);
  }
  absl::Status MergeMax(std::span<const float>) override {
    return absl::FailedPreconditionError("a histogram calibrator keeps no running max");
  }
  absl::Status RestoreReference(const kernels::Histogram::ReferenceState& state) override {
    return histogram_->RestoreReference(state);
  }

 private:
  const std::unique_ptr<cuda::Histogram> histogram_;
};

class CudaCalibratorBackend : public CalibratorBackend {
 public:
  explicit CudaCalibratorBackend(std::shared_ptr<cuda::Context> context)
      : context_(std::move(context)) {}

  std::string device() const override { return "cuda"; }
  std::string device_name() const override { return context_->info().name; }
  std::optional<DeviceMemory> Memory() const override {
    const absl::StatusOr<cuda::DeviceMemoryUse> use = context_->MemoryUse();
    if (!use.ok()) return std::nullopt;
    return DeviceMemory{.allocated = use->allocated, .free = use->free, .total = use->total};
  }

  absl::StatusOr<std::unique_ptr<Calibrator>> Create(const QuantizerSpec& spec) const override {
    if (spec.calibrator == CalibratorKind::kMax) {
      std::vector<int> axes;
      if (spec.axis.has_value()) axes.push_back(*spec.axis);
      QCAL_ASSIGN_OR_RETURN(std::unique_ptr<cuda::MaxCalibrator> calibrator,
                            cuda::MaxCalibrator::Create(context_, std::move(axes)));
      return std::unique_ptr<Calibrator>(new CudaMaxCalibrator(std::move(calibrator), spec.axis));
    }
    cuda::Histogram::Options options;
    options.num_bins = spec.num_bins;
    options.skip_zeros = spec.skip_zeros;
    options.layout = spec.layout;
    QCAL_ASSIGN_OR_RETURN(std::unique_ptr<cuda::Histogram> histogram,
                          cuda::Histogram::Create(context_, std::move(options)));
    return std::unique_ptr<Calibrator>(new CudaHistogramCalibrator(std::move(histogram)));
  }

 private:
  const std::shared_ptr<cuda::Context> context_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const CalibratorBackend>> CudaBackend(int ordinal) {
  QCAL_ASSIGN_OR_RETURN(std::shared_ptr<cuda::Context> context, cuda::Context::Create(ordinal));
  return std::shared_ptr<const CalibratorBackend>(
      std::make_shared<CudaCalibratorBackend>(std::move(context)));
}

}  // namespace qcal::server
