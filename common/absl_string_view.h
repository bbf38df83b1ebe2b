// Debian's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW 0: absl::string_view is its own
// type, and absl::StrCat does not take a std::string_view. qcal's client API speaks
// std::string_view; this bridges the two without a copy.
#ifndef QCAL_COMMON_ABSL_STRING_VIEW_H_
#define QCAL_COMMON_ABSL_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace qcal::internal {

inline absl::string_view ToAbsl(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

inline std::string_view FromAbsl(absl::string_view text) {
  return std::string_view(text.data(), text.size());
}

}  // namespace qcal::internal

#endif  // QCAL_COMMON_ABSL_STRING_VIEW_H_
