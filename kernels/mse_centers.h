// The bin centers the mse search tries as amax (kernels/mse_amax.cc and its CUDA twin):
// centers = (edges[1:] + edges[:-1]) / 2 in float32, as pytorch-quantization's
// _compute_amax_mse.
//
// Where qcal differs from the reference, on purpose: a histogram at an extreme magnitude is
// searched in units scaled by a power of two 2^shift that brings its last edge into [1, 2), so
// the chosen bin does not depend on the magnitude. Scaling by a power of two is exact, so this
// changes nothing but the magnitude wherever float32 neither overflows nor underflows; qcal does
// it only outside that range:
//   - a last edge above 2^64: the reference's float32 squared errors overflow to inf (and its
//     centers overflow near FLT_MAX), so every candidate ties;
//   - every center at or below fake_tensor_quant's epsilon 2^-24 (edges around 1e-30, say):
//     every candidate quantizes all to 0 (and squared errors underflow), so every candidate
//     ties and the reference picks the first.
// Inside that range (every golden case) shift is 0 and the centers are the reference's.
#ifndef QCAL_KERNELS_MSE_CENTERS_H_
#define QCAL_KERNELS_MSE_CENTERS_H_

#include <cstdint>
#include <span>
#include <vector>

namespace qcal::kernels {

// The scaling of a search: errors and centers in units of 2^-shift.
struct MseScale {
  // 0 for histograms at ordinary magnitudes.
  int shift = 0;

  // Center `index` as amax in the histogram's own units.
  float Amax(std::span<const float> edges, int64_t index) const;
  // A squared error computed in scaled units, in the histogram's own units (exact in double).
  double Unscaled(double error) const;
};

struct MseCenters {
  std::vector<float> centers{};  // L centers of the edges scaled by 2^scale.shift
  MseScale scale{};
};

// `edges`: L + 1 ascending float32 edges (L >= 1).
MseCenters MseSearchCenters(std::span<const float> edges);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_MSE_CENTERS_H_
