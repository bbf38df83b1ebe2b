// What a Client and its sessions share: the channel, the stub and the options.
#ifndef QCAL_CLIENT_CONNECTION_H_
#define QCAL_CLIENT_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/grpc_status.h"
#include "qcal/client.h"
#include "qcal/v1/calibration.grpc.pb.h"

namespace qcal::internal {

struct Connection {
  // Constant after construction.
  std::string address;
  ClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Calibration::StubInterface> stub;

  // Sets the deadline of options.timeout, if any, on a call's context.
  void ApplyTimeout(grpc::ClientContext* context) const;

  // One unary call: `Call(&v1::Calibration::StubInterface::GetModel, request)`.
  template <typename Response, typename Request>
  absl::StatusOr<Response> Call(grpc::Status (v1::Calibration::StubInterface::*method)(
                                    grpc::ClientContext*, const Request&, Response*),
                                const Request& request) const {
    grpc::ClientContext context;
    ApplyTimeout(&context);
    Response response;
    grpc::Status status = (stub.get()->*method)(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }
};

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_CONNECTION_H_
