// The one place where absl::Status becomes grpc::Status. The codes are the same numbers
// (google.rpc.Code), so the mapping keeps code and message.
#ifndef QCAL_SERVER_RPC_GRPC_STATUS_H_
#define QCAL_SERVER_RPC_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace qcal::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace qcal::server

#endif  // QCAL_SERVER_RPC_GRPC_STATUS_H_
