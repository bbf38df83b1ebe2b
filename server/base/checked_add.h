// Counters that must never wrap: a state that adds up batches, elements or histogram counts from
// many sources (partial states, merged state files) refuses a sum past its type instead.
//
//   QCAL_ASSIGN_OR_RETURN(int64_t batches, CheckedAdd(have, more, "quantizer 'q': batches"));
#ifndef QCAL_SERVER_BASE_CHECKED_ADD_H_
#define QCAL_SERVER_BASE_CHECKED_ADD_H_

#include <cstdint>
#include <limits>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace qcal::server {

// a + b for a, b >= 0; OUT_OF_RANGE, naming `what`, when the sum passes 2^63 - 1.
inline absl::StatusOr<int64_t> CheckedAdd(int64_t a, int64_t b, absl::string_view what) {
  if (a > std::numeric_limits<int64_t>::max() - b) {
    return absl::OutOfRangeError(
        absl::StrCat(what, ": ", a, " + ", b, " would overflow a 64-bit counter"));
  }
  return a + b;
}

// a + b; OUT_OF_RANGE, naming `what`, when the sum passes 2^64 - 1.
inline absl::StatusOr<uint64_t> CheckedAdd(uint64_t a, uint64_t b, absl::string_view what) {
  if (a > std::numeric_limits<uint64_t>::max() - b) {
    return absl::OutOfRangeError(
        absl::StrCat(what, ": ", a, " + ", b, " would overflow a 64-bit count"));
  }
  return a + b;
}

}  // namespace qcal::server

#endif  // QCAL_SERVER_BASE_CHECKED_ADD_H_
