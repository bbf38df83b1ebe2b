#include "server/tables/qdq_scale.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qcal::server {
namespace {

std::string Where(const AmaxSubject& subject, size_t channel) {
  std::string where =
      absl::StrCat("quantizer '", subject.quantizer, "' tensor '", subject.tensor, "'");
  if (subject.axis) {
    absl::StrAppend(&where, " channel ", channel, " (axis ", *subject.axis, ")");
  } else {
    absl::StrAppend(&where, " (per-tensor)");
  }
  return where;
}

}  // namespace

absl::StatusOr<std::vector<float>> ScalesFromAmax(std::span<const float> amax, float bound,
                                                  const AmaxSubject& subject,
                                                  std::vector<std::string>* warnings) {
  if (!std::isfinite(bound) || bound < 1.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(subject, 0), ": quantization bound ", bound, " is not >= 1"));
  }
  if (amax.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(subject, 0), ": no amax"));
  }
  std::vector<float> scales(amax.size());
  std::vector<std::string> notes;
  for (size_t c = 0; c < amax.size(); ++c) {
    const float a = amax[c];
    if (!std::isfinite(a)) {
      return absl::InvalidArgumentError(absl::StrCat(Where(subject, c), ": amax ",
                                                     absl::StrFormat("%g", a),
                                                     " is not finite; no scale can be written"));
    }
    if (a < 0.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(subject, c), ": amax ", absl::StrFormat("%g", a), " is negative"));
    }
    if (a == 0.0f) {
      // pytorch-quantization's export writes scale 1 where amax is 0: every value there is 0.
      scales[c] = 1.0f;
      notes.push_back(absl::StrCat(Where(subject, c), ": amax is 0; scale written as 1"));
      continue;
    }
    scales[c] = a / bound;
    if (scales[c] < std::numeric_limits<float>::min()) {
      scales[c] = std::numeric_limits<float>::min();
      notes.push_back(absl::StrCat(Where(subject, c), ": amax ", absl::StrFormat("%g", a),
                                   " gives a scale below the smallest normal float; scale "
                                   "written as ",
                                   absl::StrFormat("%g", scales[c])));
    }
  }
  warnings->insert(warnings->end(), notes.begin(), notes.end());
  return scales;
}

}  // namespace qcal::server
