// grpc::Status -> absl::Status, keeping code and message (both use the google.rpc.Code numbers).
#ifndef QCAL_CLIENT_GRPC_STATUS_H_
#define QCAL_CLIENT_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace qcal::internal {

absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_GRPC_STATUS_H_
