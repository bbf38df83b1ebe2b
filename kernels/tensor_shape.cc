#include "kernels/tensor_shape.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace qcal::kernels {

std::string ShapeString(std::span<const int64_t> shape) {
  // A shape from the wire may have any rank: past kShownDims the message says how many more.
  constexpr size_t kShownDims = 16;
  if (shape.size() <= kShownDims) return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
  return absl::StrCat("[", absl::StrJoin(shape.first(kShownDims), ", "), ", ... (",
                      shape.size() - kShownDims, " more dimensions)]");
}

absl::Status CheckShape(int64_t values, std::span<const int64_t> shape, const char* name) {
  int64_t count = 1;
  for (const int64_t d : shape) {
    if (d < 0 || (d != 0 && count > INT64_MAX / d)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " shape ", ShapeString(shape), " is not a valid shape"));
    }
    count *= d;
  }
  if (count != values) {
    return absl::InvalidArgumentError(absl::StrCat(name, " has ", values, " values but shape ",
                                                   ShapeString(shape), " needs ", count));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> BroadcastShape(std::span<const int64_t> x,
                                                    std::span<const int64_t> amax) {
  const size_t rank = std::max(x.size(), amax.size());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t dx = i < rank - x.size() ? 1 : x[i - (rank - x.size())];
    const int64_t da = i < rank - amax.size() ? 1 : amax[i - (rank - amax.size())];
    if (dx != da && dx != 1 && da != 1) {
      return absl::InvalidArgumentError(absl::StrCat("amax of shape ", ShapeString(amax),
                                                     " does not broadcast against x of shape ",
                                                     ShapeString(x)));
    }
    out[i] = dx == 1 ? da : dx;
  }
  return out;
}

}  // namespace qcal::kernels
