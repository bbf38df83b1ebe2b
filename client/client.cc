#include "qcal/client.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/channel.h"
#include "client/connection.h"
#include "client/record_sender.h"
#include "client/status_macros.h"
#include "qcal/names.h"
#include "qcal/routing.h"

namespace qcal {

std::string DefaultAddress() {
  const char* env = std::getenv("QCAL_SERVER");
  if (env != nullptr && *env != '\0') return env;
  return std::string(kDefaultAddress);
}

std::string DefaultToken() {
  const char* env = std::getenv("QCAL_TOKEN");
  return env == nullptr ? "" : env;
}

namespace internal {

void Connection::ApplyTimeout(grpc::ClientContext* context) const {
  if (options.timeout.has_value()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + *options.timeout));
  }
}

void Connection::AddModelMetadata(grpc::ClientContext* context, std::string_view model) {
  if (!model.empty()) context->AddMetadata(kModelMetadataKey, ModelMetadataValue(model));
}

}  // namespace internal

namespace {

// A complete descriptor: every field set (the wire's 0 / unset meaning "default" never used).
struct FullSpec {
  int32_t num_bits = 8;
  bool is_unsigned = false;
  std::optional<int32_t> axis;
  v1::CalibratorKind calibrator = v1::CALIBRATOR_HISTOGRAM;
  int32_t num_bins = 2048;
  bool skip_zeros = false;
  v1::QuantFormat format = v1::QUANT_FORMAT_INT;
};

constexpr int32_t kMaxNumBins = int32_t{1} << 24;

// `given` over `role` (QuantizerDescriptor's rule); INVALID_ARGUMENT naming `what`.
absl::StatusOr<FullSpec> Fill(const QuantizerDescriptor& given, const FullSpec& role,
                              const std::string& what) {
  FullSpec spec = role;
  if (given.num_bits.has_value()) {
    if (*given.num_bits < 2 || *given.num_bits > 16) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": num_bits ", *given.num_bits, " is outside 2..16"));
    }
    spec.num_bits = *given.num_bits;
  }
  if (given.is_unsigned.has_value()) spec.is_unsigned = *given.is_unsigned;
  if (given.format.has_value()) {
    absl::StatusOr<v1::QuantFormat> format = ParseQuantFormat(*given.format);
    if (!format.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", format.status().message()));
    }
    spec.format = *format;
    // E4M3 has 8 bits whatever the role's integer width.
    if (spec.format == v1::QUANT_FORMAT_FP8_E4M3 && !given.num_bits.has_value()) spec.num_bits = 8;
  }
  if (spec.format == v1::QUANT_FORMAT_FP8_E4M3) {
    if (spec.num_bits != 8) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": num_bits ", spec.num_bits, " does not fit format fp8_e4m3 (8 bits, or unset)"));
    }
    if (spec.is_unsigned) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": format fp8_e4m3 is signed; unsigned must be false"));
    }
  }
  if (given.calibrator.has_value()) {
    if (*given.calibrator == "max") {
      spec.calibrator = v1::CALIBRATOR_MAX;
    } else if (*given.calibrator == "histogram") {
      spec.calibrator = v1::CALIBRATOR_HISTOGRAM;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": calibrator '", ShortForMessage(*given.calibrator), "' is not max or histogram"));
    }
  }
  if (given.axis.has_value()) {
    spec.axis = *given.axis;
  } else if (spec.calibrator == v1::CALIBRATOR_HISTOGRAM) {
    spec.axis.reset();
  }
  if (spec.calibrator == v1::CALIBRATOR_HISTOGRAM && spec.axis.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": axis ", *spec.axis,
        " applies to max calibrators only (histograms are per-tensor; use axis none)"));
  }
  if (given.num_bins.has_value()) {
    if (*given.num_bins < 1 || *given.num_bins > kMaxNumBins) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": num_bins ", *given.num_bins, " is outside 1..", kMaxNumBins));
    }
    spec.num_bins = *given.num_bins;
  }
  if (given.skip_zeros.has_value()) spec.skip_zeros = *given.skip_zeros;
  if (spec.calibrator == v1::CALIBRATOR_MAX && spec.skip_zeros) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": skip_zeros applies to histogram calibrators only"));
  }
  return spec;
}

void ToProto(const FullSpec& spec, const std::string& name, v1::QuantizerSpec* proto) {
  proto->set_name(name);
  proto->set_num_bits(spec.num_bits);
  proto->set_is_unsigned(spec.is_unsigned);
  if (spec.axis.has_value()) proto->set_axis(*spec.axis);
  proto->set_calibrator(spec.calibrator);
  proto->set_num_bins(spec.num_bins);
  proto->set_skip_zeros(spec.skip_zeros);
  proto->set_format(spec.format);
}

bool IsWeightQuantizer(std::string_view name) { return name.ends_with("_weight_quantizer"); }

// A default descriptor: no name allowed.
absl::StatusOr<FullSpec> FillDefault(const std::optional<QuantizerDescriptor>& given,
                                     const FullSpec& role, const std::string& what) {
  if (!given.has_value()) return role;
  if (!given->name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": a default descriptor has no name (got '", ShortForMessage(given->name), "')"));
  }
  return Fill(*given, role, what);
}

}  // namespace

absl::StatusOr<v1::CreateModelRequest> CreateModelRequestFor(std::string_view model,
                                                             const ModelOptions& options) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  const std::string where = absl::StrCat("model '", std::string(model), "'");
  FullSpec weight_role;
  weight_role.axis = 0;
  weight_role.calibrator = v1::CALIBRATOR_MAX;
  QCAL_CLIENT_ASSIGN_OR_RETURN(
      const FullSpec input,
      FillDefault(options.default_input, FullSpec{}, absl::StrCat(where, ", default_input")));
  QCAL_CLIENT_ASSIGN_OR_RETURN(
      const FullSpec weight,
      FillDefault(options.default_weight, weight_role, absl::StrCat(where, ", default_weight")));
  v1::CreateModelRequest request;
  request.set_model(std::string(model));
  request.set_exist_ok(options.exist_ok);
  if (options.histogram_layout.has_value()) {
    absl::StatusOr<v1::HistogramLayout> layout = ParseHistogramLayout(*options.histogram_layout);
    if (!layout.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", layout.status().message()));
    }
    request.set_histogram_layout(*layout);
  }
  ToProto(input, "", request.mutable_default_input());
  ToProto(weight, "", request.mutable_default_weight());
  for (const QuantizerDescriptor& declared : options.quantizers) {
    QCAL_CLIENT_RETURN_IF_ERROR(
        CheckName(absl::StrCat(where, ": declared quantizer name"), declared.name));
    QCAL_CLIENT_ASSIGN_OR_RETURN(const FullSpec spec,
                                 Fill(declared, IsWeightQuantizer(declared.name) ? weight : input,
                                      absl::StrCat(where, ", quantizer '", declared.name, "'")));
    ToProto(spec, declared.name, request.add_quantizers());
  }
  return request;
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(std::string address, ClientOptions options) {
  if (address.empty()) {
    return absl::InvalidArgumentError("server address is empty (expected HOST:PORT)");
  }
  if (options.token.empty()) options.token = DefaultToken();
  auto connection = std::make_shared<internal::Connection>();
  QCAL_CLIENT_ASSIGN_OR_RETURN(connection->channel, internal::MakeChannel(address, options));
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

absl::StatusOr<v1::ModelInfo> Client::CreateModel(std::string_view model,
                                                  const ModelOptions& options) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(const v1::CreateModelRequest request,
                               CreateModelRequestFor(model, options));
  return CreateModel(request);
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

absl::Status Client::Commit(std::string_view model) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  v1::CommitRequest request;
  request.set_model(std::string(model));
  return connection_->Call(&v1::Calibration::StubInterface::Commit, request).status();
}

std::unique_ptr<ModelSession> Client::Model(std::string_view model, SessionOptions options) {
  return std::unique_ptr<ModelSession>(new ModelSession(connection_, std::string(model), options));
}

}  // namespace qcal
