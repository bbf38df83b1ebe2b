#include "kernels/mse_centers.h"

#include <cmath>

namespace qcal::kernels {
namespace {

constexpr float kZeroAmax = 0x1p-24f;     // fake_tensor_quant's epsilon
constexpr float kLargestPlain = 0x1p64f;  // squares of errors stay far below FLT_MAX

}  // namespace

float MseScale::Amax(std::span<const float> edges, int64_t index) const {
  if (shift == 0) return (edges[index + 1] + edges[index]) / 2.0f;
  const float scaled =
      (std::ldexp(edges[index + 1], shift) + std::ldexp(edges[index], shift)) / 2.0f;
  return std::ldexp(scaled, -shift);
}

double MseScale::Unscaled(double error) const { return std::ldexp(error, -2 * shift); }

MseCenters MseSearchCenters(std::span<const float> edges) {
  const size_t bins = edges.size() - 1;
  MseCenters result;
  result.centers.resize(bins);
  const float top = edges.back();
  const float last_center = (edges[bins] + edges[bins - 1]) / 2.0f;
  if (std::isfinite(top) && top > 0.0f && (top > kLargestPlain || last_center <= kZeroAmax)) {
    int exponent = 0;
    std::frexp(top, &exponent);  // top = m * 2^exponent, m in [0.5, 1)
    result.scale.shift = 1 - exponent;
  }
  if (result.scale.shift == 0) {
    for (size_t k = 0; k < bins; ++k) result.centers[k] = (edges[k + 1] + edges[k]) / 2.0f;
  } else {
    for (size_t k = 0; k < bins; ++k) {
      result.centers[k] = (std::ldexp(edges[k + 1], result.scale.shift) +
                           std::ldexp(edges[k], result.scale.shift)) /
                          2.0f;
    }
  }
  return result;
}

}  // namespace qcal::kernels
