// A tensor as the client sends it: element type, shape and raw bytes (little-endian, row-major).
//
// TensorView does not own its memory; ModelSession::Record copies it before returning.
//
//   std::vector<float> values = ...;            // 2 x 3 activations
//   std::vector<int64_t> shape = {2, 3};
//   qcal::TensorView view{qcal::DType::kFloat32, shape, std::as_bytes(std::span(values))};
#ifndef QCAL_CLIENT_TENSOR_H_
#define QCAL_CLIENT_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "qcal/v1/calibration.pb.h"

namespace qcal {

// The element types of the wire contract (calibration.proto DType).
enum class DType { kFloat32, kFloat16, kBFloat16, kFloat64 };

// Bytes per element: 4, 2, 2, 8.
size_t DTypeSize(DType dtype);

// "float32", "float16", "bfloat16", "float64".
std::string_view DTypeName(DType dtype);

// Inverse of DTypeName. INVALID_ARGUMENT naming the accepted names otherwise.
absl::StatusOr<DType> ParseDType(std::string_view name);

v1::DType ToProto(DType dtype);

struct TensorView {
  DType dtype = DType::kFloat32;
  // One entry per dimension; rank 0 (empty span) is a scalar of one element.
  std::span<const int64_t> shape;
  // Exactly prod(shape) * DTypeSize(dtype) bytes, little-endian, C order.
  std::span<const std::byte> data;
};

// prod(shape) * DTypeSize(dtype). INVALID_ARGUMENT for a negative dimension or a size that does
// not fit in 63 bits. A zero dimension gives 0 (the server refuses empty tensors; the client lets
// it say so).
absl::StatusOr<uint64_t> TensorBytes(DType dtype, std::span<const int64_t> shape);

}  // namespace qcal

#endif  // QCAL_CLIENT_TENSOR_H_
