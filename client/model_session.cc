#include <algorithm>
#include <charconv>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/aggregator.h"
#include "client/connection.h"
#include "client/record_sender.h"
#include "client/status_macros.h"
#include "common/absl_string_view.h"
#include "qcal/client.h"
#include "qcal/names.h"

namespace qcal {
namespace {

// The shortest text that reads back as `value` (100.0001 stays 100.0001, not "100").
std::string Number(double value) {
  char text[32];
  const std::to_chars_result result = std::to_chars(text, text + sizeof(text), value);
  return std::string(text, result.ptr);
}

// Fills the method fields of a ComputeAmaxRequest or MethodOverride. A parameter that does not
// apply to the method is refused (the server would ignore it); on the wire 0 means "the
// default", so an explicit 0 cannot be sent either. Ranges are the server's, checked here too so
// that nothing is sent when they fail.
template <typename Message>
absl::Status FillMethod(const std::string& what, const std::string& method,
                        const std::optional<double>& percentile,
                        const std::optional<int32_t>& start_bin,
                        const std::optional<int32_t>& stride, Message* message) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckUtf8(absl::StrCat(what, "method"), method));
  const bool searches = method == "entropy" || method == "mse";
  if (percentile.has_value()) {
    if (method != "percentile") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, "percentile applies only to method percentile, not '", method, "'"));
    }
    // Written so that NaN fails too.
    if (!(*percentile > 0 && *percentile <= 100)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, "percentile ", Number(*percentile), " is outside (0, 100]"));
    }
  }
  for (const auto& [name, value] :
       {std::pair{"start_bin", start_bin}, std::pair{"stride", stride}}) {
    if (!value.has_value()) continue;
    if (!searches) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, name, " applies only to methods entropy and mse, not '", method, "'"));
    }
    if (*value < 1) {
      return absl::InvalidArgumentError(absl::StrCat(what, name, " must be >= 1, got ", *value));
    }
  }
  message->set_method(method);
  message->set_percentile(percentile.value_or(0));
  message->set_start_bin(start_bin.value_or(0));
  message->set_stride(stride.value_or(0));
  return absl::OkStatus();
}

absl::StatusOr<v1::ComputeAmaxRequest> ToRequest(const std::string& model,
                                                 const ComputeAmaxOptions& options) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  const std::string what = absl::StrCat("model '", model, "': ");
  v1::ComputeAmaxRequest request;
  request.set_model(model);
  for (const v1::TableForm form : options.forms) request.add_forms(form);
  QCAL_CLIENT_RETURN_IF_ERROR(FillMethod(what, options.method, options.percentile,
                                         options.start_bin, options.stride, &request));
  for (const auto& [quantizer, method] : options.overrides) {
    QCAL_CLIENT_RETURN_IF_ERROR(
        CheckName(absl::StrCat(what, "quantizer name of an override"), quantizer));
    v1::OverrideEntry* entry = request.add_overrides();
    entry->set_key(quantizer);
    QCAL_CLIENT_RETURN_IF_ERROR(
        FillMethod(absl::StrCat(what, "override of quantizer '", quantizer, "': "), method.method,
                   method.percentile, method.start_bin, method.stride, entry->mutable_value()));
  }
  return request;
}

// The names a session call sends: its model's, and a quantizer's when given.
absl::Status CheckNames(const std::string& model, std::optional<std::string_view> quantizer = {}) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckName("model name", model));
  if (quantizer.has_value()) {
    QCAL_CLIENT_RETURN_IF_ERROR(
        CheckName(absl::StrCat("model '", model, "': quantizer name"), *quantizer));
  }
  return absl::OkStatus();
}

// `tensor_map` as the request's repeated entries (what a map is on the wire).
template <typename Request>
void AddTensorMap(const std::map<std::string, std::string>& tensor_map, Request* request) {
  for (const auto& [quantizer, tensor] : tensor_map) {
    v1::TensorMapEntry* entry = request->add_tensor_map();
    entry->set_key(quantizer);
    entry->set_value(tensor);
  }
}

// Every quantizer and ONNX tensor name of a tensor_map.
absl::Status CheckTensorMap(const std::string& model,
                            const std::map<std::string, std::string>& tensor_map) {
  for (const auto& [quantizer, tensor] : tensor_map) {
    QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model, quantizer));
    QCAL_CLIENT_RETURN_IF_ERROR(CheckName(
        absl::StrCat("model '", model, "': ONNX tensor name of '", quantizer, "'"), tensor));
  }
  return absl::OkStatus();
}

}  // namespace

ModelSession::ModelSession(std::shared_ptr<internal::Connection> connection, std::string model,
                           SessionOptions options)
    : connection_(std::move(connection)),
      model_(std::move(model)),
      sender_(std::make_unique<internal::RecordSender>(connection_, model_, options)),
      aggregator_(options.aggregate ? std::make_unique<internal::Aggregator>(
                                          model_, options.aggregate_send_every,
                                          [connection = connection_, model = model_] {
                                            v1::GetModelRequest request;
                                            request.set_model(model);
                                            return connection->Call(
                                                &v1::Calibration::StubInterface::GetModel, request);
                                          })
                                    : nullptr) {}

ModelSession::~ModelSession() {
  // What was counted goes out too (the sender's destructor sends what is queued).
  if (aggregator_ != nullptr) {
    for (auto& [quantizer, partial] : aggregator_->TakeAll()) {
      sender_->RecordPartial(quantizer, partial).IgnoreError();
    }
  }
}

const std::string& ModelSession::model() const { return model_; }

absl::Status ModelSession::Record(std::string_view quantizer, const TensorView& tensor) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model_, quantizer));
  if (aggregator_ == nullptr) return sender_->Record(quantizer, tensor);
  QCAL_CLIENT_ASSIGN_OR_RETURN(std::optional<v1::PartialState> ready,
                               aggregator_->Add(quantizer, tensor));
  if (!ready.has_value()) return absl::OkStatus();
  return sender_->RecordPartial(quantizer, *ready);
}

absl::Status ModelSession::RecordPartial(std::string_view quantizer,
                                         const v1::PartialState& partial) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model_, quantizer));
  return sender_->RecordPartial(quantizer, partial);
}

absl::Status ModelSession::Flush() {
  absl::Status status;
  if (aggregator_ != nullptr) {
    // A state refused by the queue (an earlier send error) is dropped with the queue's batches.
    for (auto& [quantizer, partial] : aggregator_->TakeAll()) {
      status.Update(sender_->RecordPartial(quantizer, partial));
    }
  }
  status.Update(sender_->Flush());
  return status;
}

absl::StatusOr<CommitResult> ModelSession::Commit() {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model_));
  absl::Status status;
  if (aggregator_ != nullptr) {
    for (auto& [quantizer, partial] : aggregator_->TakeAll()) {
      status.Update(sender_->RecordPartial(quantizer, partial));
    }
  }
  QCAL_CLIENT_RETURN_IF_ERROR(status);
  return sender_->Commit();
}

SessionStats ModelSession::Stats() const { return sender_->Stats(); }

absl::StatusOr<v1::ModelInfo> ModelSession::Info() {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model_));
  QCAL_CLIENT_RETURN_IF_ERROR(Flush());
  v1::GetModelRequest request;
  request.set_model(model_);
  return connection_->Call(&v1::Calibration::StubInterface::GetModel, request);
}

absl::StatusOr<v1::ModelInfo> ModelSession::Reset() {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model_));
  QCAL_CLIENT_RETURN_IF_ERROR(Flush());
  v1::ResetModelRequest request;
  request.set_model(model_);
  return connection_->Call(&v1::Calibration::StubInterface::ResetModel, request);
}

absl::StatusOr<v1::AmaxTableResponse> ModelSession::ComputeAmaxTable(
    const ComputeAmaxOptions& options) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(v1::ComputeAmaxRequest request, ToRequest(model_, options));
  QCAL_CLIENT_RETURN_IF_ERROR(Flush());
  return connection_->Call(&v1::Calibration::StubInterface::ComputeAmax, request);
}

absl::StatusOr<v1::AmaxTable> ModelSession::ComputeAmax(const ComputeAmaxOptions& options) {
  ComputeAmaxOptions message_only = options;
  message_only.forms = {v1::TABLE_FORM_MESSAGE};
  QCAL_CLIENT_ASSIGN_OR_RETURN(v1::AmaxTableResponse response, ComputeAmaxTable(message_only));
  return std::move(*response.mutable_table());
}

absl::StatusOr<v1::AmaxTableResponse> ModelSession::AmaxTable(std::vector<v1::TableForm> forms) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model_));
  QCAL_CLIENT_RETURN_IF_ERROR(Flush());
  v1::GetAmaxTableRequest request;
  request.set_model(model_);
  for (const v1::TableForm form : forms) request.add_forms(form);
  return connection_->Call(&v1::Calibration::StubInterface::GetAmaxTable, request);
}

absl::StatusOr<v1::Histogram> ModelSession::Histogram(std::string_view quantizer) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model_, quantizer));
  QCAL_CLIENT_RETURN_IF_ERROR(Flush());
  v1::GetHistogramRequest request;
  request.set_model(model_);
  request.set_quantizer(std::string(quantizer));
  return connection_->Call(&v1::Calibration::StubInterface::GetHistogram, request);
}

absl::StatusOr<v1::UploadOnnxResponse> ModelSession::UploadOnnx(
    std::string_view onnx, const std::map<std::string, std::string>& tensor_map) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model_));
  QCAL_CLIENT_RETURN_IF_ERROR(CheckTensorMap(model_, tensor_map));
  QCAL_CLIENT_RETURN_IF_ERROR(Flush());
  grpc::ClientContext context;
  connection_->ApplyTimeout(&context);
  internal::Connection::AddModelMetadata(&context, model_);
  v1::UploadOnnxResponse response;
  std::unique_ptr<grpc::ClientWriterInterface<v1::UploadOnnxRequest>> writer =
      connection_->stub->UploadOnnx(&context, &response);
  v1::UploadOnnxRequest message;
  message.set_model(model_);
  AddTensorMap(tensor_map, &message);
  size_t offset = 0;
  do {  // at least one message, so that an empty upload still names the model
    const size_t n = std::min(kMaxChunkBytes, onnx.size() - offset);
    message.set_data(std::string(onnx.substr(offset, n)));
    if (!writer->Write(message)) break;  // the server ended the stream; Finish() says why
    offset += n;
    message.clear_model();
    message.clear_tensor_map();
  } while (offset < onnx.size());
  writer->WritesDone();
  QCAL_CLIENT_RETURN_IF_ERROR(internal::FromGrpcStatus(writer->Finish()));
  return response;
}

namespace {

std::string ExplainDecisionText(v1::ExplainDecision decision) {
  switch (decision) {
    case v1::EXPLAIN_DECISION_QUANTIZED:
      return "quantized";
    case v1::EXPLAIN_DECISION_REWRITTEN:
      return "rewritten";
    case v1::EXPLAIN_DECISION_KEPT:
      return "kept";
    case v1::EXPLAIN_DECISION_SKIPPED:
      return "skipped";
    default:
      return "unspecified";
  }
}

}  // namespace

absl::StatusOr<ExportResult> ModelSession::ExportOnnx(std::optional<std::string_view> onnx,
                                                      const ExportOptions& options) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckNames(model_));
  QCAL_CLIENT_RETURN_IF_ERROR(
      CheckUtf8(absl::StrCat("model '", model_, "': target"), options.target));
  QCAL_CLIENT_RETURN_IF_ERROR(CheckTensorMap(model_, options.tensor_map));
  if (onnx.has_value() && onnx->empty()) {
    // On the wire no data means "export the stored model": an empty model would be taken for
    // that.
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", model_, "': the ONNX model given to ExportOnnx is empty (0 bytes)"));
  }
  if (!onnx.has_value() && !options.tensor_map.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model_,
                     "': tensor_map applies only to ONNX bytes sent with the export; pass the "
                     "ONNX model too, or UploadOnnx it with its tensor_map"));
  }
  // The options go in the first message, the ONNX bytes in the following ones, so that no
  // message exceeds a 4 MiB chunk by more than a few bytes.
  v1::ExportOnnxRequest first;
  first.set_model(model_);
  first.set_target(options.target);
  first.set_explain(options.explain);
  first.set_fp8_ops(options.fp8_ops);
  AddTensorMap(options.tensor_map, &first);
  if (options.compute.has_value()) {
    QCAL_CLIENT_ASSIGN_OR_RETURN(*first.mutable_compute(), ToRequest(model_, *options.compute));
  }
  QCAL_CLIENT_RETURN_IF_ERROR(Flush());
  grpc::ClientContext context;
  connection_->ApplyTimeout(&context);
  internal::Connection::AddModelMetadata(&context, model_);
  std::unique_ptr<grpc::ClientReaderWriterInterface<v1::ExportOnnxRequest, v1::ExportOnnxResponse>>
      stream = connection_->stub->ExportOnnx(&context);
  // A failed Write means the server ended the stream; Finish() says why.
  if (stream->Write(first) && onnx.has_value()) {
    v1::ExportOnnxRequest piece;
    for (size_t offset = 0; offset < onnx->size(); offset += kMaxChunkBytes) {
      piece.set_data(std::string(onnx->substr(offset, kMaxChunkBytes)));
      if (!stream->Write(piece)) break;
      if (options.progress) {
        options.progress(static_cast<int64_t>(offset + piece.data().size()),
                         static_cast<int64_t>(onnx->size()));
      }
    }
  }
  stream->WritesDone();
  ExportResult result;
  result.computed_table = options.compute.has_value();
  v1::ExportOnnxResponse message;
  bool first_message = true;
  while (stream->Read(&message)) {
    if (first_message) {
      result.amax_method = message.amax_method();
      for (const v1::ExplainEntry& e : message.explain()) {
        result.explain.push_back({.node = e.node(),
                                  .op_type = e.op_type(),
                                  .input = e.input(),
                                  .tensor = e.tensor(),
                                  .decision = ExplainDecisionText(e.decision()),
                                  .quantizer = e.quantizer(),
                                  .rule = e.rule(),
                                  .reason = e.reason()});
      }
    }
    first_message = false;
    result.onnx += message.data();
    result.warnings.insert(result.warnings.end(), message.warnings().begin(),
                           message.warnings().end());
  }
  QCAL_CLIENT_RETURN_IF_ERROR(internal::FromGrpcStatus(stream->Finish()));
  return result;
}

}  // namespace qcal
