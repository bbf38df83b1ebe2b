// ONNX scales for a QuantizeLinear/DequantizeLinear pair: scale = amax / bound, zero point 0
// (pytorch-quantization's export). The one place that enforces what every scale qcal writes to
// ONNX must be: finite and > 0.
//   - amax == 0 (a dead channel, an all-zero activation): scale 1, as the reference's export
//     does, plus a warning naming the tensor and channel;
//   - amax > 0 so small that amax / bound falls below the smallest normal float32: that
//     smallest normal float (1.18e-38), plus a warning;
//   - amax < 0, NaN or +-Inf: INVALID_ARGUMENT naming quantizer, tensor and channel.
//
//   std::vector<std::string> warnings;
//   auto scale = ScalesFromAmax({0.8f, 0.f}, *kernels::QuantBound(8, false),
//                               {"conv._weight_quantizer", "conv.weight", 0}, &warnings);
//   // *scale == {0.8f / 127.f, 1.f}; warnings names "conv.weight" channel 1.
#ifndef QCAL_SERVER_TABLES_QDQ_SCALE_H_
#define QCAL_SERVER_TABLES_QDQ_SCALE_H_

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qcal::server {

// What the amax belongs to, for messages.
struct AmaxSubject {
  absl::string_view quantizer;
  absl::string_view tensor;
  // The channel axis of a per-channel amax; nullopt for a per-tensor amax (one value).
  std::optional<int> axis;
};

// One float32 scale per amax value. `bound` is kernels::QuantBound(num_bits, unsigned) (finite, >=
// 1). Appends to *warnings; on error nothing is appended.
absl::StatusOr<std::vector<float>> ScalesFromAmax(std::span<const float> amax, float bound,
                                                  const AmaxSubject& subject,
                                                  std::vector<std::string>* warnings);

}  // namespace qcal::server

#endif  // QCAL_SERVER_TABLES_QDQ_SCALE_H_
