#include "qcal/client.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/connection.h"
#include "client/record_sender.h"
#include "client/status_macros.h"
#include "qcal/names.h"

namespace qcal {

std::string DefaultAddress() {
  const char* env = std::getenv("QCAL_SERVER");
  if (env != nullptr && *env != '\0') return env;
  return std::string(kDefaultAddress);
}

namespace internal {

void Connection::ApplyTimeout(grpc::ClientContext* context) const {
  if (options.timeout.has_value()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + *options.timeout));
  }
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<Client>> Client::Create(std::string address, ClientOptions options) {
  if (address.empty()) {
    return absl::InvalidArgumentError("server address is empty (expected HOST:PORT)");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  auto connection = std::make_shared<internal::Connection>();
  connection->channel =
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  connection->stub = v1::Calibration::NewStub(connection->channel);
  connection->address = std::move(address);
  connection->options = options;
  return std::unique_ptr<Client>(new Client(std::move(connection)));
}

Client::Client(std::shared_ptr<internal::Connection> connection)
    : connection_(std::move(connection)) {}

Client::~Client() = default;

const std::string& Client::address() const { return connection_->address; }

absl::StatusOr<v1::ModelInfo> Client::CreateModel(std::string_view model) {
  v1::CreateModelRequest request;
  request.set_model(std::string(model));
  return CreateModel(request);
}

absl::StatusOr<v1::ModelInfo> Client::CreateModel(const v1::CreateModelRequest& request) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", request.model()));
  for (const v1::QuantizerSpec& spec : request.quantizers()) {
    QCAL_CLIENT_RETURN_IF_ERROR(CheckName("quantizer name", spec.name()));
  }
  // Ignored by the server, but protobuf refuses to serialize a string that is not UTF-8.
  QCAL_CLIENT_RETURN_IF_ERROR(CheckUtf8("default_input name", request.default_input().name()));
  QCAL_CLIENT_RETURN_IF_ERROR(CheckUtf8("default_weight name", request.default_weight().name()));
  return connection_->Call(&v1::Calibration::StubInterface::CreateModel, request);
}

absl::StatusOr<v1::ModelInfo> Client::GetModel(std::string_view model) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  v1::GetModelRequest request;
  request.set_model(std::string(model));
  return connection_->Call(&v1::Calibration::StubInterface::GetModel, request);
}

absl::StatusOr<std::vector<v1::ModelInfo>> Client::ListModels() {
  absl::StatusOr<v1::ListModelsResponse> response =
      connection_->Call(&v1::Calibration::StubInterface::ListModels, v1::ListModelsRequest());
  if (!response.ok()) return response.status();
  return std::vector<v1::ModelInfo>(response->models().begin(), response->models().end());
}

absl::Status Client::DeleteModel(std::string_view model) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  v1::DeleteModelRequest request;
  request.set_model(std::string(model));
  return connection_->Call(&v1::Calibration::StubInterface::DeleteModel, request).status();
}

absl::StatusOr<v1::ModelInfo> Client::ResetModel(std::string_view model) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  v1::ResetModelRequest request;
  request.set_model(std::string(model));
  return connection_->Call(&v1::Calibration::StubInterface::ResetModel, request);
}

std::unique_ptr<ModelSession> Client::Model(std::string_view model, SessionOptions options) {
  return std::unique_ptr<ModelSession>(new ModelSession(connection_, std::string(model), options));
}

}  // namespace qcal
