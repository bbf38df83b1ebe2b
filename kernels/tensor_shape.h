// Shape checks shared by fake quant on the CPU (fake_quant.cc) and its CUDA twin
// (cuda/fake_quant.cc), so both refuse the same input with the same message.
#ifndef QCAL_KERNELS_TENSOR_SHAPE_H_
#define QCAL_KERNELS_TENSOR_SHAPE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace qcal::kernels {

// "[2, 3]"; "[]" for a scalar; past 16 dimensions the first 16 and "... (N more dimensions)",
// so that a message about a shape from outside stays short.
std::string ShapeString(std::span<const int64_t> shape);

// INVALID_ARGUMENT, naming `name`, for a negative or overflowing dimension ("x shape [..] is not
// a valid shape") or a value count that is not the shape's product ("x has 5 values but shape
// [2, 3] needs 6").
absl::Status CheckShape(int64_t values, std::span<const int64_t> shape, const char* name);

// numpy broadcasting of x's shape `x` and amax's shape `amax`; INVALID_ARGUMENT "amax of shape
// .. does not broadcast against x of shape ..".
absl::StatusOr<std::vector<int64_t>> BroadcastShape(std::span<const int64_t> x,
                                                    std::span<const int64_t> amax);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_TENSOR_SHAPE_H_
