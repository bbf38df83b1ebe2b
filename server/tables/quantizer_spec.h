// A quantizer's descriptor: pytorch-quantization's QuantDescriptor, the parts calibration uses.
//
//   QuantizerSpec spec = DefaultSpecFor("conv1._weight_quantizer");  // 8-bit, axis 0, max
//   QCAL_RETURN_IF_ERROR(ValidateSpec(spec));
#ifndef QCAL_SERVER_TABLES_QUANTIZER_SPEC_H_
#define QCAL_SERVER_TABLES_QUANTIZER_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "kernels/histogram.h"
#include "kernels/quant_format.h"

namespace qcal::server {

enum class CalibratorKind {
  // Running max of |x|, per tensor or per channel (kernels::MaxCalibrator).
  kMax,
  // Histogram of |x|, per tensor only (kernels::Histogram).
  kHistogram,
};

// "max" or "histogram".
absl::string_view CalibratorKindName(CalibratorKind kind);

inline constexpr int kDefaultNumBits = 8;
inline constexpr int kDefaultNumBins = 2048;
// A histogram may start with at most this many bins. Growth is limited to the larger of
// kernels::Histogram::kDefaultMaxBins (2^20) and its start, coarsening past it.
inline constexpr int64_t kMaxHistogramBins = kernels::Histogram::kMaxBinsLimit;

struct QuantizerSpec {
  // "<module path>._input_quantizer" or "<module path>._weight_quantizer"; empty in a model's
  // default descriptors.
  std::string name{};
  // 2..16.
  int num_bits = kDefaultNumBits;
  bool is_unsigned = false;
  // The channel axis a per-channel max calibrator keeps (negative counts from the end of each
  // batch's shape); nullopt means per-tensor. Histogram calibrators are per-tensor only.
  std::optional<int> axis{};
  CalibratorKind calibrator = CalibratorKind::kHistogram;
  // Histogram only: bins on the first non-zero batch, 1..kMaxHistogramBins.
  int num_bins = kDefaultNumBins;
  // Histogram only: drop exact zeros before binning (pytorch-quantization's skip_zeros).
  bool skip_zeros = false;
  // Histogram only: how the bins are laid out (kernels/mergeable_histogram.h). Not a field of
  // the wire's QuantizerSpec: the model sets it from its ModelConfig::histogram_layout, one
  // layout for all its quantizers.
  kernels::HistogramLayout layout = kernels::HistogramLayout::kMergeable;
  // kFp8E4M3: num_bits 8 and signed (ValidateSpec).
  kernels::QuantFormat format = kernels::QuantFormat::kInt;

  friend bool operator==(const QuantizerSpec&, const QuantizerSpec&) = default;
};

// True for names ending in "_weight_quantizer": they take the model's weight defaults and are
// left out of the TensorRT cache (which lists activations only).
bool IsWeightQuantizer(absl::string_view name);

// DESIGN.md defaults: inputs 8-bit per-tensor histogram (2048 bins); weights 8-bit per-channel
// on axis 0, max.
QuantizerSpec DefaultInputSpec();
QuantizerSpec DefaultWeightSpec();

// INVALID_ARGUMENT (naming the quantizer and the field) for num_bits outside 2..16, a histogram
// calibrator with an axis (pytorch-quantization's HistogramCalibrator has none), num_bins outside
// 1..kMaxHistogramBins, skip_zeros on a max calibrator, or a kFp8E4M3 spec whose num_bits is not 8
// or that is unsigned (E4M3 is one signed 8-bit format: calibration.proto's QuantFormat).
absl::Status ValidateSpec(const QuantizerSpec& spec);

}  // namespace qcal::server

#endif  // QCAL_SERVER_TABLES_QUANTIZER_SPEC_H_
