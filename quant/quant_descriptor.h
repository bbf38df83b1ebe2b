// QuantDescriptor: how one tensor is quantized, pytorch-quantization's QuantDescriptor
// (ScaledQuantDescriptor, tensor_quant.py) with every field and its defaults.
//
//   using qcal::quant::QuantDescriptor;
//   QuantDescriptor input_desc({.calib_method = "histogram"});        // 8-bit per-tensor
//   QuantDescriptor weight_desc({.axis = 0});                         // per output channel
//   QuantDescriptor desc({.num_bits = 4, .fake_quant = false, .axis = 0, .is_unsigned = true});
//   desc.str();   // "QuantDescriptor(unsigned 4bit real axis=0)"
//
// Fields (read-only after construction; build a new descriptor to change one):
//   num_bits      bits of the integer grid; bound = 2^(num_bits - 1 + unsigned) - 1
//   format        kInt (the grid above) or kFp8E4M3: FP8 E4M3, scale = amax / 448, which
//                 pytorch-quantization writes num_bits=(4, 3) (QuantDescriptorFromJson reads
//                 that form); num_bits must then stay 8 and is_unsigned false
//   name          optional, printed in str()
//   fake_quant    true: quantize then dequantize (float output); false: integer values
//   axis          per-tensor (default), one kept axis (int) or several (tuple); amax has one
//                 value per element of the kept axes. Negative axes count from the end.
//   amax          optional fixed amax (a float, a list, or an array of any shape; float32)
//   learn_amax    learn amax through a clip stage (TensorQuantizer); per-tensor only
//   scale_amax    optional factor applied to amax before quantizing
//   calib_method  "max" (MaxCalibrator) or "histogram" (HistogramCalibrator)
//   is_unsigned   grid [0, bound] (the reference's `unsigned`)
//   narrow_range  grid [-bound, bound] instead of [-bound - 1, bound]. The descriptor's default
//                 is false (the reference's too); tensor_quant()'s own default is true.
//
// Errors (thrown by the constructor, see errors.h): c10::ValueError for num_bits outside
// [2, 16] signed or [1, 16] unsigned (the reference accepts 0 and 1 signed and then computes
// NaN or a degenerate grid; qcal refuses them), an empty or repeated axis tuple, an amax value
// that is negative, NaN or infinite or whose size does not match its shape, a scale_amax that
// is not finite and > 0, a calib_method other than "max" / "histogram", and an FP8 descriptor
// whose num_bits is not 8 or that is unsigned; c10::TypeError
// when learn_amax is combined with an axis (as the reference).
#ifndef QCAL_QUANT_QUANT_DESCRIPTOR_H_
#define QCAL_QUANT_QUANT_DESCRIPTOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kernels/quant_format.h"

namespace qcal::quant {

// Where a quantizer keeps one amax per channel: per-tensor, one axis (`axis=0`) or a tuple of
// axes (`axis=(0, 1)`). The reference tells an int from a tuple (it prints `axis=0` vs
// `axis=(0,)`); so does this class. Converts implicitly from int for `{.axis = 0}`.
class QuantAxis {
 public:
  // Per-tensor.
  QuantAxis() = default;
  // One axis, printed as "0".
  QuantAxis(int axis) : axes_{axis}, is_tuple_(false), per_tensor_(false) {}  // NOLINT
  // A tuple of axes, printed as "(0,)" / "(0, 1)". An empty tuple is refused by the descriptor.
  static QuantAxis Tuple(std::vector<int> axes);

  bool per_tensor() const { return per_tensor_; }
  bool is_tuple() const { return is_tuple_; }
  // The kept axes as given (may be negative); empty per-tensor.
  const std::vector<int>& axes() const { return axes_; }
  // The kept axes of a tensor of rank `rank`, negatives counted from the end, in the order
  // given. c10::ValueError naming the axis when one is outside [-rank, rank) (the reference
  // silently reduces every axis then) or repeated.
  std::vector<int64_t> Resolve(int64_t rank) const;
  // Python's form: "None", "0", "(0,)", "(0, 1)".
  std::string str() const;

  friend bool operator==(const QuantAxis&, const QuantAxis&) = default;

 private:
  std::vector<int> axes_;
  bool is_tuple_ = false;
  bool per_tensor_ = true;
};

// A fixed amax given to a descriptor: float32 values in row-major order and their shape (the
// reference's np.array(amax, dtype=np.float32)). Shape {} is a scalar.
struct DescriptorAmax {
  std::vector<float> values{};
  std::vector<int64_t> shape{};

  static DescriptorAmax Scalar(float value) { return {{value}, {}}; }
  static DescriptorAmax List(std::vector<float> values) {
    const auto n = static_cast<int64_t>(values.size());
    return {std::move(values), {n}};
  }
  friend bool operator==(const DescriptorAmax&, const DescriptorAmax&) = default;
};

class QuantDescriptor {
 public:
  struct Options {
    int num_bits = 8;
    std::optional<std::string> name{};
    bool fake_quant = true;
    QuantAxis axis{};
    std::optional<DescriptorAmax> amax{};
    bool learn_amax = false;
    std::optional<double> scale_amax{};
    std::string calib_method = "max";
    bool is_unsigned = false;
    bool narrow_range = false;
    kernels::QuantFormat format = kernels::QuantFormat::kInt;
  };

  // 8-bit, fake, per-tensor, max calibration, signed, full range.
  QuantDescriptor() : QuantDescriptor(Options{}) {}
  // Validates `options` (errors above).
  explicit QuantDescriptor(Options options);

  int num_bits() const { return options_.num_bits; }
  const std::optional<std::string>& name() const { return options_.name; }
  bool fake_quant() const { return options_.fake_quant; }
  const QuantAxis& axis() const { return options_.axis; }
  const std::optional<DescriptorAmax>& amax() const { return options_.amax; }
  bool learn_amax() const { return options_.learn_amax; }
  const std::optional<double>& scale_amax() const { return options_.scale_amax; }
  const std::string& calib_method() const { return options_.calib_method; }
  bool is_unsigned() const { return options_.is_unsigned; }
  bool narrow_range() const { return options_.narrow_range; }
  kernels::QuantFormat format() const { return options_.format; }
  // "8" or, for FP8 E4M3, "(4, 3)": num_bits as the reference prints it.
  std::string num_bits_str() const;
  // 2^(num_bits - 1 + unsigned) - 1: 127 for signed 8-bit, 255 unsigned (integers only; an FP8
  // descriptor's largest value is kernels::kFp8E4M3Max).
  int64_t bound() const;
  const Options& options() const { return options_; }

  // The reference's __str__, e.g. "QuantDescriptor(8bit fake axis= per-tensor)",
  // "QuantDescriptor(unsigned 8bit real axis=(1,) amax=[1. 2.] full_range scale_amax=0.5)";
  // with a name, "NAME: (8bit fake ...)".
  std::string str() const;

  friend bool operator==(const QuantDescriptor& a, const QuantDescriptor& b);

 private:
  Options options_;
};

// The reference's predefined descriptors. Weights of every convolution (transposed or not) and
// of Linear keep axis 0, as the reference and TensorRT do (ONNX Runtime wants axis 1 for
// ConvTranspose; the QDQ export handles that per target).
inline const QuantDescriptor QUANT_DESC_8BIT_PER_TENSOR({.num_bits = 8});
inline const QuantDescriptor QUANT_DESC_UNSIGNED_8BIT_PER_TENSOR({.num_bits = 8,
                                                                  .is_unsigned = true});
inline const QuantDescriptor QUANT_DESC_8BIT_CONV1D_WEIGHT_PER_CHANNEL({.num_bits = 8, .axis = 0});
inline const QuantDescriptor QUANT_DESC_8BIT_CONV2D_WEIGHT_PER_CHANNEL({.num_bits = 8, .axis = 0});
inline const QuantDescriptor QUANT_DESC_8BIT_CONV3D_WEIGHT_PER_CHANNEL({.num_bits = 8, .axis = 0});
inline const QuantDescriptor QUANT_DESC_8BIT_LINEAR_WEIGHT_PER_ROW({.num_bits = 8, .axis = 0});
inline const QuantDescriptor QUANT_DESC_8BIT_CONVTRANSPOSE1D_WEIGHT_PER_CHANNEL({.num_bits = 8,
                                                                                 .axis = 0});
inline const QuantDescriptor QUANT_DESC_8BIT_CONVTRANSPOSE2D_WEIGHT_PER_CHANNEL({.num_bits = 8,
                                                                                 .axis = 0});
inline const QuantDescriptor QUANT_DESC_8BIT_CONVTRANSPOSE3D_WEIGHT_PER_CHANNEL({.num_bits = 8,
                                                                                 .axis = 0});

}  // namespace qcal::quant

#endif  // QCAL_QUANT_QUANT_DESCRIPTOR_H_
