// The clip stage of a TensorQuantizer that learns its amax: pytorch-quantization's clip()
// (nn/functional.py ClipFunction) and Clip module (nn/modules/clip.py).
//
//   qcal::quant::Clip clip(-1.0, 1.0, /*learn_min=*/true, /*learn_max=*/true);
//   at::Tensor y = clip(x);              // min(max(x, clip_value_min), clip_value_max)
//   y.backward(g);                       // grads reach x and both bounds
//
// Forward: min(x, max) then max(., min), elementwise with broadcasting; NaN stays NaN.
// Backward (PACT, as TensorFlow's clip_by_value): x gets grad_output strictly inside
// (min, max) and 0 elsewhere; clip_value_max gets the sum of grad_output where x >= max,
// clip_value_min the sum where x <= min (summed to each bound's shape), when they require grad.
#ifndef QCAL_QUANT_CLIP_H_
#define QCAL_QUANT_CLIP_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <ostream>

namespace qcal::quant {

// inputs, clip_value_min, clip_value_max: floating tensors broadcastable to each other.
at::Tensor clip(const at::Tensor& inputs, const at::Tensor& clip_value_min,
                const at::Tensor& clip_value_max);

class ClipImpl : public torch::nn::Module {
 public:
  // Learned bounds become 0-d float32 parameters "clip_value_min" / "clip_value_max"; fixed ones
  // are constants (not in the state dict, as the reference's plain floats).
  ClipImpl(double clip_value_min, double clip_value_max, bool learn_min = false,
           bool learn_max = false);

  at::Tensor forward(const at::Tensor& inputs);

  const at::Tensor& clip_value_min() const { return clip_value_min_; }
  const at::Tensor& clip_value_max() const { return clip_value_max_; }

  // "Clip()", as the reference prints it.
  void pretty_print(std::ostream& stream) const override;

 private:
  at::Tensor clip_value_min_;
  at::Tensor clip_value_max_;
};

TORCH_MODULE(Clip);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_CLIP_H_
