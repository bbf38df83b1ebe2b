#include "kernels/histogram_edges.h"

#include <cmath>

namespace qcal::kernels {
namespace {

// ATen's cpu_serial_kernel_vec fills two 8-lane vectors per step while 16 elements remain and
// computes the rest one by one.
constexpr int64_t kLanes = 8;
constexpr int64_t kVectorBlock = 2 * kLanes;

}  // namespace

std::vector<float> LinspaceEdges(float max, int64_t num_bins) {
  const int64_t steps = num_bins + 1;
  std::vector<float> edges(static_cast<size_t>(steps));
  const float start = 0.0f;
  const float end = max;
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int64_t halfway = steps / 2;
  // ATen's linspace_kernel is built with FMA contraction: start + step * idx and
  // end - step * (steps - idx - 1) round once; the lanes add j * step to that base unfused.
  auto base_at = [&](int64_t idx) {
    return idx < halfway ? std::fma(step, static_cast<float>(idx), start)
                         : std::fma(-step, static_cast<float>(steps - idx - 1), end);
  };
  const int64_t vectorized = steps - steps % kVectorBlock;
  for (int64_t i0 = 0; i0 < vectorized; i0 += kLanes) {
    const float base = base_at(i0);
    for (int64_t j = 0; j < kLanes; ++j) {
      const float lane_offset = static_cast<float>(j) * step;
      edges[static_cast<size_t>(i0 + j)] = base + lane_offset;
    }
  }
  for (int64_t i = vectorized; i < steps; ++i) edges[static_cast<size_t>(i)] = base_at(i);
  return edges;
}

std::vector<float> ArangeEdges(float width, int64_t count) {
  std::vector<float> edges(static_cast<size_t>(count));
  const double step = width;  // arange accumulates in double (acc_type<float>) from start 0
  const int64_t vectorized = count - count % kVectorBlock;
  for (int64_t k0 = 0; k0 < vectorized; k0 += kLanes) {
    // The vector's base is passed as float, its lanes add j * step in double.
    const float base = static_cast<float>(step * static_cast<double>(k0));
    for (int64_t j = 0; j < kLanes; ++j) {
      edges[static_cast<size_t>(k0 + j)] =
          static_cast<float>(static_cast<double>(base) + static_cast<double>(j) * step);
    }
  }
  for (int64_t k = vectorized; k < count; ++k) {
    edges[static_cast<size_t>(k)] = static_cast<float>(step * static_cast<double>(k));
  }
  return edges;
}

}  // namespace qcal::kernels
