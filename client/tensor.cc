#include "qcal/tensor.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/absl_string_view.h"

namespace qcal {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kFloat64:
      return 8;
  }
  return 0;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kFloat64:
      return "float64";
  }
  return "unknown";
}

absl::StatusOr<DType> ParseDType(std::string_view name) {
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64}) {
    if (name == DTypeName(dtype)) return dtype;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported dtype '", internal::ToAbsl(name),
                   "': expected float32, float16, bfloat16 or float64"));
}

v1::DType ToProto(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
      return v1::DTYPE_FLOAT32;
    case DType::kFloat16:
      return v1::DTYPE_FLOAT16;
    case DType::kBFloat16:
      return v1::DTYPE_BFLOAT16;
    case DType::kFloat64:
      return v1::DTYPE_FLOAT64;
  }
  return v1::DTYPE_UNSPECIFIED;
}

absl::StatusOr<uint64_t> TensorBytes(DType dtype, std::span<const int64_t> shape) {
  constexpr uint64_t kLimit = std::numeric_limits<int64_t>::max();
  uint64_t bytes = DTypeSize(dtype);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape dimension ", i, " is negative (", shape[i], ")"));
    }
    const uint64_t dim = static_cast<uint64_t>(shape[i]);
    if (dim != 0 && bytes > kLimit / dim) {
      return absl::InvalidArgumentError("tensor size overflows 63 bits");
    }
    bytes *= dim;
  }
  return bytes;
}

}  // namespace qcal
