// The gRPC channel of a Client: plaintext or TLS (ClientOptions' tls_ca, tls_cert, tls_key), and
// the bearer token on every call. The token goes as per-call metadata added by an interceptor,
// not as gRPC call credentials, which gRPC refuses on a plaintext channel: loopback users may
// use tokens without TLS (README, "Security", says the risk).
#ifndef QCAL_CLIENT_CHANNEL_H_
#define QCAL_CLIENT_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "qcal/client.h"

namespace qcal::internal {

// A channel to `address` with options' TLS files (read now) and token (as given: the caller
// resolves $QCAL_TOKEN). Client::Create's INVALID_ARGUMENT errors.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& address,
                                                           const ClientOptions& options);

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_CHANNEL_H_
