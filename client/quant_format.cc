// The names of QuantFormat values in the client's descriptors, the CLI and Python: the amax
// table JSON's "format" (server/tables/amax_table_json.h) spells them the same way.
#include "absl/strings/str_cat.h"
#include "qcal/client.h"
#include "qcal/names.h"

namespace qcal {

absl::StatusOr<v1::QuantFormat> ParseQuantFormat(std::string_view text) {
  if (text == "int") return v1::QUANT_FORMAT_INT;
  if (text == "fp8_e4m3") return v1::QUANT_FORMAT_FP8_E4M3;
  return absl::InvalidArgumentError(
      absl::StrCat("format '", ShortForMessage(text), "' is not int or fp8_e4m3"));
}

std::string_view QuantFormatName(v1::QuantFormat format) {
  switch (format) {
    case v1::QUANT_FORMAT_INT:
      return "int";
    case v1::QUANT_FORMAT_FP8_E4M3:
      return "fp8_e4m3";
    default:
      return "unknown";
  }
}

}  // namespace qcal
