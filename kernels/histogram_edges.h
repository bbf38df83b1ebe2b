// Bin edges exactly as pytorch-quantization's HistogramCalibrator (torch_hist=True) gets them from
// PyTorch 1.13 on CPU, bit for bit, so that later batches bin against the same last edge:
//   first batch  torch.linspace(0, max, num_bins + 1)   (float32)
//   growth       torch.arange(0, max + width, width)     (float32 out, double arithmetic)
// Both reproduce ATen's vectorised CPU kernels (8 float lanes, two vectors per step, a scalar
// tail) as run on one thread; the reference's values agree to 1 ulp with the plain k * step.
#ifndef QCAL_KERNELS_HISTOGRAM_EDGES_H_
#define QCAL_KERNELS_HISTOGRAM_EDGES_H_

#include <cstdint>
#include <vector>

namespace qcal::kernels {

// num_bins + 1 edges from 0 to `max` (max > 0, num_bins >= 1).
std::vector<float> LinspaceEdges(float max, int64_t num_bins);

// `count` edges k * width, k = 0 .. count-1 (width > 0).
std::vector<float> ArangeEdges(float width, int64_t count);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_HISTOGRAM_EDGES_H_
