// Return-on-error helpers for absl::Status / absl::StatusOr, so the happy path reads straight.
//
//   QCAL_RETURN_IF_ERROR(CheckShape(shape));
//   QCAL_ASSIGN_OR_RETURN(auto model, registry.Find(name));
#ifndef QCAL_SERVER_BASE_STATUS_UTIL_H_
#define QCAL_SERVER_BASE_STATUS_UTIL_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#define QCAL_STATUS_CONCAT_INNER_(a, b) a##b
#define QCAL_STATUS_CONCAT_(a, b) QCAL_STATUS_CONCAT_INNER_(a, b)

#define QCAL_RETURN_IF_ERROR(expr)                                \
  do {                                                            \
    if (absl::Status qcal_status_ = (expr); !qcal_status_.ok()) { \
      return qcal_status_;                                        \
    }                                                             \
  } while (false)

#define QCAL_ASSIGN_OR_RETURN(lhs, expr) \
  QCAL_ASSIGN_OR_RETURN_IMPL_(QCAL_STATUS_CONCAT_(qcal_statusor_, __LINE__), lhs, expr)

#define QCAL_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                \
  if (!statusor.ok()) {                                  \
    return std::move(statusor).status();                 \
  }                                                      \
  lhs = std::move(statusor).value()

namespace qcal::server {

// `status` with "context: " put in front of its message; OK stays OK.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace qcal::server

#endif  // QCAL_SERVER_BASE_STATUS_UTIL_H_
