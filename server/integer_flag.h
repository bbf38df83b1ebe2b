// A CLI11 check for qcal-server's integer flags: the text must be a decimal integer that fits
// the flag's type. CLI11's own conversion saturates out-of-range text (99999999999999999999
// became an effectively unlimited --max-batch-bytes) and accepts forms like 1e9; this refuses
// both as usage errors, naming the flag, the text and the range.
//
//   app.add_option("--max-batch-bytes", options.max_batch_bytes, "...")
//       ->check(qcal::server::IntegerFlag<int64_t>());
//   // qcal-server --max-batch-bytes 99999999999999999999
//   // qcal-server: usage: --max-batch-bytes: 99999999999999999999 is not an integer in
//   //   [-9223372036854775808, 9223372036854775807] (see 'qcal-server --help')
//
// The flag's own rule (a floor such as >= 1) stays with ValidateServerOptions, whose messages
// say why.
#ifndef QCAL_SERVER_INTEGER_FLAG_H_
#define QCAL_SERVER_INTEGER_FLAG_H_

#include <CLI/CLI.hpp>
#include <charconv>
#include <limits>
#include <string>
#include <system_error>
#include <type_traits>

namespace qcal::server {

// Whether `text` is, in full, an optionally signed decimal integer within T's range.
template <typename T>
bool ParsesAsInteger(const std::string& text) {
  static_assert(std::is_integral_v<T>);
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  // std::from_chars takes a leading '-' but not '+' ("+-1" stays refused).
  if (begin != end && *begin == '+') {
    ++begin;
    if (begin != end && *begin == '-') return false;
  }
  T value{};
  const auto [next, error] = std::from_chars(begin, end, value);
  return error == std::errc() && next == end;
}

template <typename T>
CLI::Validator IntegerFlag() {
  const std::string range = "[" + std::to_string(std::numeric_limits<T>::min()) + ", " +
                            std::to_string(std::numeric_limits<T>::max()) + "]";
  return CLI::Validator(
      [range](std::string& text) -> std::string {
        if (ParsesAsInteger<T>(text)) return "";
        return text + " is not an integer in " + range;
      },
      "INT in " + range);
}

}  // namespace qcal::server

#endif  // QCAL_SERVER_INTEGER_FLAG_H_
