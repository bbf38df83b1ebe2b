#include "server/rpc/calibration_service.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/base/names.h"
#include "server/base/repeat_log_filter.h"
#include "server/core/call_control.h"
#include "server/core/metrics.h"
#include "server/rpc/call_auth.h"
#include "server/rpc/grpc_status.h"
#include "server/rpc/idle_stream.h"
#include "server/rpc/proto_convert.h"
#include "spdlog/spdlog.h"

namespace qcal::server {
namespace {

// OK when `response` fits the server's --max-response-bytes; RESOURCE_EXHAUSTED naming `what`
// otherwise (the client would refuse it anyway, past its own receive limit, after the server had
// spent the memory and time to send it).
absl::Status CheckResponseSize(const google::protobuf::Message& response, int64_t limit,
                               absl::string_view what) {
  const size_t bytes = response.ByteSizeLong();
  if (bytes <= static_cast<size_t>(limit)) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(what, ": the response would be ", bytes,
                                                   " bytes, more than the server's "
                                                   "--max-response-bytes ",
                                                   limit));
}

// The forms a ComputeAmax or GetAmaxTable request asks for (none listed: all three);
// INVALID_ARGUMENT for a value that is no form (it would otherwise return an empty response).
absl::StatusOr<TableForms> FormsFromProto(const google::protobuf::RepeatedField<int>& forms,
                                          absl::string_view where) {
  if (forms.empty()) return TableForms{};
  TableForms out{.message = false, .json = false, .trt_cache = false};
  for (const int form : forms) {
    switch (form) {
      case v1::TABLE_FORM_MESSAGE:
        out.message = true;
        break;
      case v1::TABLE_FORM_JSON:
        out.json = true;
        break;
      case v1::TABLE_FORM_TRT_CACHE:
        out.trt_cache = true;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": forms holds ", form,
            ", which is no table form; expected TABLE_FORM_MESSAGE (1), TABLE_FORM_JSON (2) or "
            "TABLE_FORM_TRT_CACHE (3)"));
    }
  }
  return out;
}

// A gRPC call as the core sees it.
class GrpcCallControl final : public CallControl {
 public:
  explicit GrpcCallControl(const grpc::ServerContext& context) : context_(context) {}
  bool Cancelled() const override { return context_.IsCancelled(); }
  absl::Time Deadline() const override {
    const auto deadline = context_.deadline();  // time_point::max() when there is none
    if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
    return absl::FromChrono(deadline);
  }

 private:
  const grpc::ServerContext& context_;
};

// The call's token allows `method` on `model` (permissions.h); UNAUTHENTICATED or
// PERMISSION_DENIED otherwise.
absl::Status Authorize(const TokenAuthority* tokens, const grpc::ServerContext& context,
                       Method method, absl::string_view model) {
  absl::StatusOr<Grant> grant = AuthenticateCall(context, tokens);
  if (!grant.ok()) return grant.status();
  return CheckCall(*grant, method, model);
}

// A streaming call's model, checked as each message names it (the first one must; later ones may
// repeat it, and the core refuses another).
absl::Status AuthorizeModel(const Grant& grant, Method method, absl::string_view model) {
  if (model.empty()) return absl::OkStatus();
  return CheckCall(grant, method, model);
}

}  // namespace

grpc::Status CalibrationService::Refuse(const char* method, const absl::Status& status) {
  spdlog::debug("{} refused: {}", method, status.ToString());
  core_.metrics().RpcFailed(method, status.code());
  return ToGrpcStatus(status);
}

grpc::Status CalibrationService::CreateModel(grpc::ServerContext* context,
                                             const v1::CreateModelRequest* request,
                                             v1::ModelInfo* response) {
  RpcTimer timer(core_.metrics(), "CreateModel");
  if (absl::Status denied = Authorize(tokens_, *context, Method::kCreateModel, request->model());
      !denied.ok()) {
    return Refuse("CreateModel", denied);
  }
  absl::StatusOr<ModelConfig> config = ModelConfigFromProto(*request);
  if (!config.ok()) return Refuse("CreateModel", config.status());
  absl::StatusOr<ModelInfo> info = core_.CreateModel(std::move(*config), request->exist_ok());
  if (!info.ok()) return Refuse("CreateModel", info.status());
  spdlog::info("{} model '{}'", request->exist_ok() ? "created or joined" : "created", info->name);
  ModelInfoToProto(*info, response);
  return grpc::Status::OK;
}

grpc::Status CalibrationService::GetModel(grpc::ServerContext* context,
                                          const v1::GetModelRequest* request,
                                          v1::ModelInfo* response) {
  RpcTimer timer(core_.metrics(), "GetModel");
  if (absl::Status denied = Authorize(tokens_, *context, Method::kGetModel, request->model());
      !denied.ok()) {
    return Refuse("GetModel", denied);
  }
  absl::StatusOr<ModelInfo> info = core_.GetModel(request->model());
  if (!info.ok()) return Refuse("GetModel", info.status());
  ModelInfoToProto(*info, response);
  if (absl::Status fits = CheckResponseSize(*response, core_.options().limits.max_response_bytes,
                                            absl::StrCat("model '", info->name, "', GetModel"));
      !fits.ok()) {
    response->Clear();
    return Refuse("GetModel", fits);
  }
  return grpc::Status::OK;
}

grpc::Status CalibrationService::ListModels(grpc::ServerContext* context,
                                            const v1::ListModelsRequest*,
                                            v1::ListModelsResponse* response) {
  RpcTimer timer(core_.metrics(), "ListModels");
  absl::StatusOr<Grant> grant = AuthorizeCall(*context, tokens_, Method::kListModels);
  if (!grant.ok()) return Refuse("ListModels", grant.status());
  // A token limited to a model prefix sees only those models.
  for (const ModelInfo& info : core_.ListModels()) {
    if (CoversModel(*grant, info.name)) ModelInfoToProto(info, response->add_models());
  }
  if (absl::Status fits = CheckResponseSize(*response, core_.options().limits.max_response_bytes,
                                            absl::StrCat("ListModels of ", response->models_size(),
                                                         " models (GetModel each instead)"));
      !fits.ok()) {
    response->Clear();
    return Refuse("ListModels", fits);
  }
  return grpc::Status::OK;
}

grpc::Status CalibrationService::DeleteModel(grpc::ServerContext* context,
                                             const v1::DeleteModelRequest* request,
                                             v1::DeleteModelResponse*) {
  RpcTimer timer(core_.metrics(), "DeleteModel");
  if (absl::Status denied = Authorize(tokens_, *context, Method::kDeleteModel, request->model());
      !denied.ok()) {
    return Refuse("DeleteModel", denied);
  }
  if (absl::Status status = core_.DeleteModel(request->model()); !status.ok()) {
    return Refuse("DeleteModel", status);
  }
  spdlog::info("deleted model '{}'", request->model());
  return grpc::Status::OK;
}

grpc::Status CalibrationService::ResetModel(grpc::ServerContext* context,
                                            const v1::ResetModelRequest* request,
                                            v1::ModelInfo* response) {
  RpcTimer timer(core_.metrics(), "ResetModel");
  if (absl::Status denied = Authorize(tokens_, *context, Method::kResetModel, request->model());
      !denied.ok()) {
    return Refuse("ResetModel", denied);
  }
  absl::StatusOr<ModelInfo> info = core_.ResetModel(request->model());
  if (!info.ok()) return Refuse("ResetModel", info.status());
  ModelInfoToProto(*info, response);
  return grpc::Status::OK;
}

grpc::Status CalibrationService::Record(grpc::ServerContext* context,
                                        grpc::ServerReader<v1::RecordRequest>* reader,
                                        v1::RecordResponse* response) {
  RpcTimer timer(core_.metrics(), "Record");
  absl::StatusOr<Grant> grant = AuthorizeCall(*context, tokens_, Method::kRecord);
  if (!grant.ok()) return Refuse("Record", grant.status());
  const GrpcCallControl call(*context);
  std::unique_ptr<RecordStream> stream = core_.OpenRecordStream(call);
  // A refused stream still says what it applied (RpcStatus.details), so the client counts its
  // batches exactly: those before the error applied, the rest not.
  auto refuse = [this, &stream](const absl::Status& status) {
    v1::RpcStatus details;
    details.set_code(static_cast<int>(status.code()));
    details.set_message(std::string(status.message()));
    v1::RecordResponse applied;
    RecordResponseFromResult(stream->Result(), &applied);
    details.add_details()->PackFrom(applied);
    const grpc::Status refused = Refuse("Record", status);
    return grpc::Status(refused.error_code(), refused.error_message(), details.SerializeAsString());
  };
  if (core_.draining()) {
    return refuse(absl::UnavailableError(
        "qcal-server is shutting down (draining after SIGTERM): it takes no new Record "
        "streams; send the batches again once it is back, or to another server"));
  }
  // A stream that receives nothing for --stream-idle-seconds is cancelled (qcal's clients reopen
  // silently). A batch it left half sent is dropped, as when a stream ends mid-batch.
  IdleStream idle(core_.stream_watchdog(), context, "Record",
                  "a batch left half sent was dropped; the batches before it stay applied");
  v1::RecordRequest request;
  idle.Reading();
  while (reader->Read(&request)) {
    idle.Busy();
    idle.Model(request.model());
    if (absl::Status denied = AuthorizeModel(*grant, Method::kRecord, request.model());
        !denied.ok()) {
      return refuse(denied);
    }
    absl::StatusOr<RecordChunk> chunk = RecordChunkFromProto(request);
    if (!chunk.ok()) return refuse(chunk.status());
    if (absl::Status status = stream->Add(std::move(*chunk)); !status.ok()) return refuse(status);
    idle.Reading();
  }
  if (idle.EndReading()) return idle.status();
  absl::StatusOr<BatchStats> applied = stream->Finish();
  if (!applied.ok()) return refuse(applied.status());
  RecordResponseFromResult(stream->Result(), response);
  return grpc::Status::OK;
}

grpc::Status CalibrationService::ComputeAmax(grpc::ServerContext* context,
                                             const v1::ComputeAmaxRequest* request,
                                             v1::AmaxTableResponse* response) {
  RpcTimer timer(core_.metrics(), "ComputeAmax");
  if (absl::Status denied = Authorize(tokens_, *context, Method::kComputeAmax, request->model());
      !denied.ok()) {
    return Refuse("ComputeAmax", denied);
  }
  absl::StatusOr<AmaxRequest> amax_request = AmaxRequestFromProto(*request);
  if (!amax_request.ok()) return Refuse("ComputeAmax", amax_request.status());
  const GrpcCallControl call(*context);
  amax_request->cancelled = [&call] { return call.Cancelled(); };
  absl::StatusOr<TableForms> asked =
      FormsFromProto(request->forms(),
                     absl::StrCat("model '", ShortForMessage(request->model()), "', ComputeAmax"));
  if (!asked.ok()) return Refuse("ComputeAmax", asked.status());
  absl::StatusOr<AmaxTableForms> forms = core_.ComputeAmax(request->model(), *amax_request, *asked);
  if (!forms.ok()) return Refuse("ComputeAmax", forms.status());
  AmaxTableFormsToProto(*std::move(forms), response);
  return grpc::Status::OK;
}

grpc::Status CalibrationService::GetAmaxTable(grpc::ServerContext* context,
                                              const v1::GetAmaxTableRequest* request,
                                              v1::AmaxTableResponse* response) {
  RpcTimer timer(core_.metrics(), "GetAmaxTable");
  if (absl::Status denied = Authorize(tokens_, *context, Method::kGetAmaxTable, request->model());
      !denied.ok()) {
    return Refuse("GetAmaxTable", denied);
  }
  absl::StatusOr<TableForms> asked =
      FormsFromProto(request->forms(),
                     absl::StrCat("model '", ShortForMessage(request->model()), "', GetAmaxTable"));
  if (!asked.ok()) return Refuse("GetAmaxTable", asked.status());
  absl::StatusOr<AmaxTableForms> forms = core_.GetAmaxTable(request->model(), *asked);
  if (!forms.ok()) return Refuse("GetAmaxTable", forms.status());
  AmaxTableFormsToProto(*std::move(forms), response);
  return grpc::Status::OK;
}

grpc::Status CalibrationService::GetHistogram(grpc::ServerContext* context,
                                              const v1::GetHistogramRequest* request,
                                              v1::Histogram* response) {
  RpcTimer timer(core_.metrics(), "GetHistogram");
  if (absl::Status denied = Authorize(tokens_, *context, Method::kGetHistogram, request->model());
      !denied.ok()) {
    return Refuse("GetHistogram", denied);
  }
  absl::StatusOr<HistogramSnapshot> histogram =
      core_.GetHistogram(request->model(), request->quantizer());
  if (!histogram.ok()) return Refuse("GetHistogram", histogram.status());
  HistogramToProto(request->model(), request->quantizer(), *histogram, response);
  if (absl::Status fits = CheckResponseSize(
          *response, core_.options().limits.max_response_bytes,
          absl::StrCat("model '", request->model(), "', GetHistogram of quantizer '",
                       request->quantizer(), "'"));
      !fits.ok()) {
    response->Clear();
    return Refuse("GetHistogram", fits);
  }
  return grpc::Status::OK;
}

grpc::Status CalibrationService::UploadOnnx(grpc::ServerContext* context,
                                            grpc::ServerReader<v1::UploadOnnxRequest>* reader,
                                            v1::UploadOnnxResponse* response) {
  RpcTimer timer(core_.metrics(), "UploadOnnx");
  absl::StatusOr<Grant> grant = AuthorizeCall(*context, tokens_, Method::kUploadOnnx);
  if (!grant.ok()) return Refuse("UploadOnnx", grant.status());
  std::unique_ptr<OnnxUpload> upload = core_.OpenOnnxUpload();
  // An idle stream is ended; the bytes it sent go with `upload` (and their --max-state-bytes).
  IdleStream idle(core_.stream_watchdog(), context, "UploadOnnx",
                  "the ONNX model bytes it sent were dropped; the model is unchanged");
  v1::UploadOnnxRequest request;
  idle.Reading();
  while (reader->Read(&request)) {
    idle.Busy();
    idle.Model(request.model());
    if (absl::Status denied = AuthorizeModel(*grant, Method::kUploadOnnx, request.model());
        !denied.ok()) {
      return Refuse("UploadOnnx", denied);
    }
    absl::StatusOr<std::map<std::string, std::string>> tensor_map = TensorMapFromProto(
        request.tensor_map(),
        absl::StrCat("model '", ShortForMessage(request.model()), "', UploadOnnx"));
    if (!tensor_map.ok()) return Refuse("UploadOnnx", tensor_map.status());
    OnnxUploadChunk chunk{.model = request.model(),
                          .data = std::move(*request.mutable_data()),
                          .tensor_map = *std::move(tensor_map)};
    if (absl::Status status = upload->Add(std::move(chunk)); !status.ok()) {
      return Refuse("UploadOnnx", status);
    }
    idle.Reading();
  }
  if (idle.EndReadingWhole()) return idle.status();
  absl::StatusOr<OnnxUploadResult> result = core_.FinishOnnxUpload(*upload);
  if (!result.ok()) return Refuse("UploadOnnx", result.status());
  response->set_bytes(result->bytes);
  response->set_opset(result->opset);
  response->mutable_bindings()->insert(result->bindings.begin(), result->bindings.end());
  return grpc::Status::OK;
}

grpc::Status CalibrationService::ExportOnnx(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ExportOnnxResponse, v1::ExportOnnxRequest>* stream) {
  const GrpcCallControl call(*context);
  RpcTimer timer(core_.metrics(), "ExportOnnx");
  absl::StatusOr<Grant> grant = AuthorizeCall(*context, tokens_, Method::kExportOnnx);
  if (!grant.ok()) return Refuse("ExportOnnx", grant.status());
  std::unique_ptr<OnnxExport> exporter = core_.OpenOnnxExport();
  // Only the requests are watched: computing and sending the result are the server's time.
  IdleStream idle(core_.stream_watchdog(), context, "ExportOnnx",
                  "what it sent was dropped; nothing was exported or stored");
  v1::ExportOnnxRequest request;
  idle.Reading();
  while (stream->Read(&request)) {
    idle.Busy();
    idle.Model(request.model());
    // compute.model, when set, must equal model (the core checks): checking both covers it.
    for (const std::string* model : {&request.model(), &request.compute().model()}) {
      if (absl::Status denied = AuthorizeModel(*grant, Method::kExportOnnx, *model); !denied.ok()) {
        return Refuse("ExportOnnx", denied);
      }
    }
    absl::StatusOr<OnnxExportChunk> chunk = ExportChunkFromProto(request);
    if (!chunk.ok()) return Refuse("ExportOnnx", chunk.status());
    if (chunk->compute.has_value())
      chunk->compute->cancelled = [&call] { return call.Cancelled(); };
    if (absl::Status status = exporter->Add(*std::move(chunk)); !status.ok()) {
      return Refuse("ExportOnnx", status);
    }
    idle.Reading();
  }
  if (idle.EndReadingWhole()) return idle.status();
  absl::StatusOr<OnnxExportResult> result = exporter->Finish();
  if (absl::IsCancelled(result.status())) core_.metrics().AmaxCancelled();
  if (!result.ok()) return Refuse("ExportOnnx", result.status());

  const absl::string_view bytes = result->bytes;
  size_t offset = 0;
  do {
    v1::ExportOnnxResponse message;
    if (offset == 0) {
      message.mutable_warnings()->Add(result->warnings.begin(), result->warnings.end());
      message.set_amax_method(result->amax_method);
      for (const ExplainEntry& entry : result->explain) {
        ExplainEntryToProto(entry, message.add_explain());
      }
    }
    const size_t size = std::min(kExportChunkBytes, bytes.size() - offset);
    message.set_data(std::string(bytes.substr(offset, size)));
    offset += size;
    if (!stream->Write(message)) {
      return Refuse("ExportOnnx", absl::CancelledError("ExportOnnx: the client went away"));
    }
  } while (offset < bytes.size());
  return grpc::Status::OK;
}

grpc::Status CalibrationService::SaveState(grpc::ServerContext* context,
                                           const v1::SaveStateRequest* request,
                                           grpc::ServerWriter<v1::StateChunk>* writer) {
  RpcTimer timer(core_.metrics(), "SaveState");
  if (absl::Status denied = Authorize(tokens_, *context, Method::kSaveState, request->model());
      !denied.ok()) {
    return Refuse("SaveState", denied);
  }
  absl::StatusOr<CalibrationCore::SavedState> saved = core_.SaveState(request->model());
  if (!saved.ok()) return Refuse("SaveState", saved.status());
  const absl::string_view bytes = saved->file;
  for (size_t offset = 0; offset < bytes.size(); offset += kStateChunkBytes) {
    v1::StateChunk chunk;
    chunk.set_data(std::string(bytes.substr(offset, kStateChunkBytes)));
    if (!writer->Write(chunk)) {
      return Refuse("SaveState", absl::CancelledError("SaveState: the client went away"));
    }
  }
  return grpc::Status::OK;
}

grpc::Status CalibrationService::LoadState(grpc::ServerContext* context,
                                           grpc::ServerReader<v1::LoadStateRequest>* reader,
                                           v1::ModelInfo* response) {
  RpcTimer timer(core_.metrics(), "LoadState");
  absl::StatusOr<Grant> grant = AuthorizeCall(*context, tokens_, Method::kLoadState);
  if (!grant.ok()) return Refuse("LoadState", grant.status());
  std::unique_ptr<StateLoad> load = core_.OpenStateLoad();
  IdleStream idle(core_.stream_watchdog(), context, "LoadState",
                  "the state file bytes it sent were dropped; no model was created or changed");
  v1::LoadStateRequest request;
  idle.Reading();
  while (reader->Read(&request)) {
    idle.Busy();
    idle.Model(request.model());
    if (absl::Status denied = AuthorizeModel(*grant, Method::kLoadState, request.model());
        !denied.ok()) {
      return Refuse("LoadState", denied);
    }
    StateLoadChunk chunk{.model = request.model(),
                         .merge = request.merge(),
                         .data = std::move(*request.mutable_data())};
    if (absl::Status status = load->Add(std::move(chunk)); !status.ok()) {
      return Refuse("LoadState", status);
    }
    idle.Reading();
  }
  if (idle.EndReadingWhole()) return idle.status();
  absl::StatusOr<ModelInfo> info = core_.FinishStateLoad(*load);
  if (!info.ok()) return Refuse("LoadState", info.status());
  spdlog::info("{} model '{}' from a state file", load->merge() ? "merged into" : "loaded",
               info->name);
  ModelInfoToProto(*info, response);
  return grpc::Status::OK;
}

grpc::Status CalibrationService::Commit(grpc::ServerContext* context,
                                        const v1::CommitRequest* request,
                                        v1::CommitResponse* response) {
  RpcTimer timer(core_.metrics(), "Commit");
  if (absl::Status denied = Authorize(tokens_, *context, Method::kCommit, request->model());
      !denied.ok()) {
    return Refuse("Commit", denied);
  }
  absl::StatusOr<SessionSequences> sequences =
      core_.Commit(request->model(), request->session_id());
  if (!sequences.ok()) {
    // A failed write is the server's trouble (its disk), not the caller's: logged as such, a
    // repeat of the same failure (clients retry it) at most every 10 s. One filter for the
    // process, as the log is.
    static RepeatLogFilter repeats(absl::Seconds(10));
    if (absl::IsUnavailable(sequences.status())) {
      const std::string message(sequences.status().message());
      if (const std::optional<int64_t> held_back = repeats.Pass(message, absl::Now())) {
        spdlog::warn("Commit failed: {}{}", message,
                     *held_back > 0 ? absl::StrCat(" (and ", *held_back,
                                                   " times more since it was last logged)")
                                    : "");
      }
    }
    return Refuse("Commit", sequences.status());
  }
  response->set_applied_sequence(sequences->applied);
  response->set_durable_sequence(sequences->durable);
  return grpc::Status::OK;
}

}  // namespace qcal::server
