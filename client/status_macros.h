// Return-on-error helpers of the client, so the happy path reads straight.
//
//   QCAL_CLIENT_RETURN_IF_ERROR(Flush());
//   QCAL_CLIENT_ASSIGN_OR_RETURN(uint64_t bytes, TensorBytes(dtype, shape));
#ifndef QCAL_CLIENT_STATUS_MACROS_H_
#define QCAL_CLIENT_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define QCAL_CLIENT_CONCAT_INNER_(a, b) a##b
#define QCAL_CLIENT_CONCAT_(a, b) QCAL_CLIENT_CONCAT_INNER_(a, b)

#define QCAL_CLIENT_RETURN_IF_ERROR(expr)                                       \
  do {                                                                          \
    if (absl::Status qcal_client_status_ = (expr); !qcal_client_status_.ok()) { \
      return qcal_client_status_;                                               \
    }                                                                           \
  } while (false)

#define QCAL_CLIENT_ASSIGN_OR_RETURN(lhs, expr)                                                 \
  QCAL_CLIENT_ASSIGN_OR_RETURN_IMPL_(QCAL_CLIENT_CONCAT_(qcal_client_statusor_, __LINE__), lhs, \
                                     expr)

#define QCAL_CLIENT_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                       \
  if (!statusor.ok()) {                                         \
    return std::move(statusor).status();                        \
  }                                                             \
  lhs = std::move(statusor).value()

#endif  // QCAL_CLIENT_STATUS_MACROS_H_
