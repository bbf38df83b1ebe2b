// Histogram of |x| and the amax searches over it: pytorch-quantization's HistogramCalibrator
// (calib/histogram.py, torch_hist=True), on kernels/histogram.h and kernels/histogram_amax.h.
//
//   qcal::quant::HistogramCalibrator calib({.num_bits = 8});
//   for (const at::Tensor& batch : activations) calib.collect(batch);
//   at::Tensor amax = *calib.compute_amax({.method = "entropy"});
//   at::Tensor p = *calib.compute_amax({.method = "percentile", .percentile = 99.99});
//
// Collection: 2048 bins over [0, max |x|] on the first batch; a later, larger max appends bins of
// the same width (bit for bit the reference's edges and counts). Methods: "entropy" (KL
// divergence, last minimum), "mse" (first minimum over bin centers), "percentile" (default
// 99.99), and "max" (the exact running max of |x|, a qcal addition). amax is a 0-d float32
// tensor.
// Deliberate differences from the reference: NaN and +-inf are counted and left out (the
// reference refuses them in a first batch, bins NaN later and fails on inf); a first batch of
// only zeros is held and re-binned when real range arrives (the reference fails then); counts are
// exact integers; percentile 0 is refused (it would give amax 0).
// Errors: c10::NotImplementedError for a per-channel axis (as the reference) or torch_hist=false
// (numpy's collection is not reproduced); c10::ValueError for num_bins outside [1, 2^24], an empty
// batch (state unchanged), a missing or unknown method, or bad search arguments. A batch that would
// grow the histogram past max(2^20, num_bins) bins coarsens it (merges adjacent bins; a
// deliberate deviation: the reference allocates without limit), see kernels/histogram.h.
#ifndef QCAL_QUANT_HISTOGRAM_CALIBRATOR_H_
#define QCAL_QUANT_HISTOGRAM_CALIBRATOR_H_

#include "kernels/histogram.h"
#include "kernels/quant_format.h"
#include "quant/calibrator.h"

namespace qcal::quant {

class HistogramCalibrator : public Calibrator {
 public:
  struct Options {
    int num_bits = 8;
    QuantAxis axis{};
    bool is_unsigned = false;
    int num_bins = 2048;
    bool skip_zeros = false;
    bool torch_hist = true;
    // kFp8E4M3: entropy and mse simulate E4M3 (kernels::SearchOptions::format).
    kernels::QuantFormat format = kernels::QuantFormat::kInt;
  };

  explicit HistogramCalibrator(Options options);

  void collect(const at::Tensor& inputs) override;
  void reset() override;
  // args.method is required. std::nullopt before any non-zero value when nothing can be searched
  // (no batch, or skip_zeros left nothing); a histogram of only zeros gives amax 0.
  std::optional<at::Tensor> compute_amax(const CalibAmaxArgs& args) override;

  std::string name() const override { return "HistogramCalibrator"; }
  // "HistogramCalibrator(calib_bin_edges=[0.000, ..., 8.091](3881))", or "...=None)".
  std::string str() const override;
  std::string repr() const override;

  // calib_hist: one int64 count per bin; calib_bin_edges: bins + 1 float32 edges. Both
  // std::nullopt until a non-zero finite value has been binned.
  std::optional<at::Tensor> calib_hist() const;
  std::optional<at::Tensor> calib_bin_edges() const;
  bool skip_zeros() const { return histogram_.options().skip_zeros; }
  // The kernels histogram behind it (exact counts, abs_max, pending zeros).
  const kernels::Histogram& histogram() const { return histogram_; }

 private:
  kernels::Histogram histogram_;
  kernels::QuantFormat format_;
};

}  // namespace qcal::quant

#endif  // QCAL_QUANT_HISTOGRAM_CALIBRATOR_H_
