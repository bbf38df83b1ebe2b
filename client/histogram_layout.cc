// The names of HistogramLayout values in the client's options, the CLI and Python.
#include "absl/strings/str_cat.h"
#include "qcal/client.h"
#include "qcal/names.h"

namespace qcal {

absl::StatusOr<v1::HistogramLayout> ParseHistogramLayout(std::string_view text) {
  if (text == "mergeable") return v1::HISTOGRAM_LAYOUT_MERGEABLE;
  if (text == "reference") return v1::HISTOGRAM_LAYOUT_REFERENCE;
  return absl::InvalidArgumentError(
      absl::StrCat("histogram_layout '", ShortForMessage(text), "' is not mergeable or reference"));
}

std::string_view HistogramLayoutName(v1::HistogramLayout layout) {
  switch (layout) {
    case v1::HISTOGRAM_LAYOUT_MERGEABLE:
      return "mergeable";
    case v1::HISTOGRAM_LAYOUT_REFERENCE:
      return "reference";
    default:
      return "unspecified";
  }
}

}  // namespace qcal
