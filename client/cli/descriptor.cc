#include "client/cli/descriptor.h"

#include <set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/absl_string_view.h"

namespace qcal::cli {
namespace {

constexpr absl::string_view kKeys =
    "name, num_bits, unsigned, axis, calibrator, num_bins, skip_zeros, format";

absl::Status BadValue(absl::string_view option, const std::string& key, const std::string& value,
                      absl::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(option, ": ", key, "=", value, ": expected ", expected));
}

absl::StatusOr<int32_t> Int(absl::string_view option, const std::string& key,
                            const std::string& value) {
  int32_t parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed)) return BadValue(option, key, value, "an integer");
  return parsed;
}

absl::StatusOr<bool> Bool(absl::string_view option, const std::string& key,
                          const std::string& value) {
  if (value == "true") return true;
  if (value == "false") return false;
  return BadValue(option, key, value, "true or false");
}

}  // namespace

absl::StatusOr<QuantizerDescriptor> ParseDescriptor(std::string_view text,
                                                    std::string_view option_view, bool named) {
  const absl::string_view option = internal::ToAbsl(option_view);
  QuantizerDescriptor descriptor;
  std::set<std::string> seen;
  for (absl::string_view item : absl::StrSplit(internal::ToAbsl(text), ',')) {
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(option, ": '", std::string(item), "' is not KEY=VALUE (keys: ", kKeys, ")"));
    }
    const std::string key(item.substr(0, eq));
    const std::string value(item.substr(eq + 1));
    if (!seen.insert(key).second) {
      return absl::InvalidArgumentError(absl::StrCat(option, ": key ", key, " is given twice"));
    }
    if (key == "name") {
      if (!named) {
        return absl::InvalidArgumentError(
            absl::StrCat(option,
                         ": name does not apply to a default descriptor (use --quantizer "
                         "name=...,... to declare a quantizer)"));
      }
      descriptor.name = value;
    } else if (key == "num_bits") {
      auto parsed = Int(option, key, value);
      if (!parsed.ok()) return parsed.status();
      descriptor.num_bits = *parsed;
    } else if (key == "unsigned") {
      auto parsed = Bool(option, key, value);
      if (!parsed.ok()) return parsed.status();
      descriptor.is_unsigned = *parsed;
    } else if (key == "axis") {
      if (value == "none") {
        descriptor.axis = kPerTensor;
      } else {
        int32_t axis = 0;
        if (!absl::SimpleAtoi(value, &axis)) {
          return BadValue(option, key, value, "an integer, or none for per-tensor");
        }
        descriptor.axis = axis;
      }
    } else if (key == "calibrator") {
      if (value != "max" && value != "histogram") {
        return BadValue(option, key, value, "max or histogram");
      }
      descriptor.calibrator = value;
    } else if (key == "num_bins") {
      auto parsed = Int(option, key, value);
      if (!parsed.ok()) return parsed.status();
      descriptor.num_bins = *parsed;
    } else if (key == "skip_zeros") {
      auto parsed = Bool(option, key, value);
      if (!parsed.ok()) return parsed.status();
      descriptor.skip_zeros = *parsed;
    } else if (key == "format") {
      if (!ParseQuantFormat(value).ok()) return BadValue(option, key, value, "int or fp8_e4m3");
      descriptor.format = value;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(option, ": unknown key '", key, "' (keys: ", kKeys, ")"));
    }
  }
  if (named && !seen.contains("name")) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, ": name=QUANTIZER is required (e.g. name=conv1._input_quantizer)"));
  }
  return descriptor;
}

}  // namespace qcal::cli
