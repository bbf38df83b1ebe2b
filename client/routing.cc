#include "qcal/routing.h"

namespace qcal {

std::string ModelMetadataValue(std::string_view model) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string value;
  value.reserve(model.size());
  for (const char c : model) {
    const auto byte = static_cast<unsigned char>(c);
    // Space is encoded too: HTTP/2 peers may trim a value's leading and trailing whitespace.
    if (byte >= 0x21 && byte <= 0x7E && byte != '%') {
      value += c;
    } else {
      value += '%';
      value += kHex[byte >> 4];
      value += kHex[byte & 0xF];
    }
  }
  return value;
}

}  // namespace qcal
