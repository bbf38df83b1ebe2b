// What a Client and its sessions share: the channel, the stub and the options.
#ifndef QCAL_CLIENT_CONNECTION_H_
#define QCAL_CLIENT_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>

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

  // Names `model` in the call's metadata (qcal/routing.h), for a router; every call that names a
  // model does this before it starts. Nothing for an empty name (the server refuses it anyway).
  static void AddModelMetadata(grpc::ClientContext* context, std::string_view model);

  // One unary call: `Call(&v1::Calibration::StubInterface::GetModel, request)`. A request with a
  // `model` field names it in the metadata.
  template <typename Response, typename Request>
  absl::StatusOr<Response> Call(grpc::Status (v1::Calibration::StubInterface::*method)(
                                    grpc::ClientContext*, const Request&, Response*),
                                const Request& request) const {
    grpc::ClientContext context;
    ApplyTimeout(&context);
    if constexpr (requires { request.model(); }) AddModelMetadata(&context, request.model());
    Response response;
    grpc::Status status = (stub.get()->*method)(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }
};

}  // namespace qcal::internal

#endif  // QCAL_CLIENT_CONNECTION_H_
