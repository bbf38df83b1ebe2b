#include "client/fake_calibration_service.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace qcal::testing {
namespace {

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

// prod(shape) * sizeof(dtype); -1 for a dtype the contract does not know.
int64_t ExpectedBytes(const v1::TensorHeader& header) {
  int64_t bytes = 0;
  switch (header.dtype()) {
    case v1::DTYPE_FLOAT32:
      bytes = 4;
      break;
    case v1::DTYPE_FLOAT16:
    case v1::DTYPE_BFLOAT16:
      bytes = 2;
      break;
    case v1::DTYPE_FLOAT64:
      bytes = 8;
      break;
    default:
      return -1;
  }
  for (int64_t dim : header.shape()) bytes *= dim;
  return bytes;
}

}  // namespace

void FakeCalibrationService::Refuse(const std::string& quantizer, grpc::Status status) {
  absl::MutexLock lock(&mu_);
  refused_[quantizer] = std::move(status);
}

void FakeCalibrationService::Hold() {
  absl::MutexLock lock(&mu_);
  held_ = true;
}

void FakeCalibrationService::Release() {
  absl::MutexLock lock(&mu_);
  held_ = false;
}

std::vector<FakeCalibrationService::Batch> FakeCalibrationService::batches() const {
  absl::MutexLock lock(&mu_);
  return batches_;
}

int FakeCalibrationService::record_streams_started() const {
  absl::MutexLock lock(&mu_);
  return record_streams_started_;
}

std::vector<v1::ComputeAmaxRequest> FakeCalibrationService::compute_requests() const {
  absl::MutexLock lock(&mu_);
  return compute_requests_;
}

std::vector<v1::UploadOnnxRequest> FakeCalibrationService::upload_messages() const {
  absl::MutexLock lock(&mu_);
  return upload_messages_;
}

std::vector<v1::ExportOnnxRequest> FakeCalibrationService::export_requests() const {
  absl::MutexLock lock(&mu_);
  return export_requests_;
}

void FakeCalibrationService::SetExportMessages(std::vector<v1::ExportOnnxResponse> messages) {
  absl::MutexLock lock(&mu_);
  export_messages_ = std::move(messages);
}

void FakeCalibrationService::SetModelInfo(v1::ModelInfo info) {
  absl::MutexLock lock(&mu_);
  infos_[info.name()] = std::move(info);
}

int FakeCalibrationService::get_model_calls() const {
  absl::MutexLock lock(&mu_);
  return get_model_calls_;
}

grpc::Status FakeCalibrationService::Record(grpc::ServerContext*,
                                            grpc::ServerReader<v1::RecordRequest>* reader,
                                            v1::RecordResponse* response) {
  {
    absl::MutexLock lock(&mu_);
    ++record_streams_started_;
    mu_.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &held_));
  }
  std::string model;
  std::optional<Batch> batch;  // the batch being assembled
  int64_t expected = 0;
  int64_t sequence = 0;  // of the batch being assembled
  v1::RecordRequest message;
  while (reader->Read(&message)) {
    if (model.empty()) {
      if (message.model().empty()) return Invalid("the first Record message must name the model");
      model = message.model();
    }
    if (message.has_partial()) {
      if (batch.has_value()) return Invalid("a partial state inside an incomplete batch");
      if (message.has_header() || !message.data().empty()) {
        return Invalid("a partial state with a header or data");
      }
      // As qcal-server counts a partial state: the tensors it stands for.
      response->set_batches(response->batches() + message.partial().batches());
      response->set_elements(response->elements() + message.partial().elements());
      response->set_bytes(response->bytes() +
                          static_cast<int64_t>(message.partial().ByteSizeLong()));
      response->set_partials(response->partials() + 1);
      // In memory only: what is applied is durable (as a qcal-server without --data-dir).
      response->set_applied_sequence(message.sequence());
      response->set_durable_sequence(message.sequence());
      absl::MutexLock lock(&mu_);
      batches_.push_back(Batch{model, message.quantizer(), {}, "", {}, message.partial()});
      continue;
    }
    if (message.has_header()) {
      if (batch.has_value()) return Invalid("a new header before the batch was complete");
      expected = ExpectedBytes(message.header());
      if (expected < 0) return Invalid("unknown dtype");
      {
        absl::MutexLock lock(&mu_);
        if (auto it = refused_.find(message.quantizer()); it != refused_.end()) return it->second;
      }
      batch = Batch{model, message.quantizer(), message.header(), "", {}, std::nullopt};
      sequence = message.sequence();
    } else if (!batch.has_value()) {
      return Invalid("data without a batch");
    }
    batch->data += message.data();
    batch->chunk_sizes.push_back(message.data().size());
    if (static_cast<int64_t>(batch->data.size()) > expected) return Invalid("too many bytes");
    if (static_cast<int64_t>(batch->data.size()) == expected) {
      response->set_batches(response->batches() + 1);
      response->set_bytes(response->bytes() + expected);
      response->set_applied_sequence(sequence);
      response->set_durable_sequence(sequence);
      absl::MutexLock lock(&mu_);
      batches_.push_back(*std::move(batch));
      batch.reset();
    }
  }
  if (batch.has_value()) return Invalid("the stream ended mid-batch");
  return grpc::Status::OK;
}

grpc::Status FakeCalibrationService::GetModel(grpc::ServerContext*,
                                              const v1::GetModelRequest* request,
                                              v1::ModelInfo* response) {
  absl::MutexLock lock(&mu_);
  ++get_model_calls_;
  if (auto it = infos_.find(request->model()); it != infos_.end()) {
    *response = it->second;
    return grpc::Status::OK;
  }
  for (const Batch& batch : batches_) {
    if (batch.model == request->model()) {
      response->set_name(request->model());
      return grpc::Status::OK;
    }
  }
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      absl::StrCat("model '", request->model(), "' not found"));
}

grpc::Status FakeCalibrationService::ComputeAmax(grpc::ServerContext*,
                                                 const v1::ComputeAmaxRequest* request,
                                                 v1::AmaxTableResponse* response) {
  absl::MutexLock lock(&mu_);
  compute_requests_.push_back(*request);
  response->mutable_table()->set_model(request->model());
  response->mutable_table()->set_method(request->method());
  response->set_json(absl::StrCat("{", request->method(), "}"));
  response->set_trt_cache(absl::StrCat("trt ", request->method()));
  response->add_warnings(absl::StrCat("warning ", request->method()));
  return grpc::Status::OK;
}

grpc::Status FakeCalibrationService::UploadOnnx(grpc::ServerContext*,
                                                grpc::ServerReader<v1::UploadOnnxRequest>* reader,
                                                v1::UploadOnnxResponse* response) {
  v1::UploadOnnxRequest message;
  int64_t bytes = 0;
  while (reader->Read(&message)) {
    bytes += static_cast<int64_t>(message.data().size());
    absl::MutexLock lock(&mu_);
    upload_messages_.push_back(message);
  }
  response->set_bytes(bytes);
  return grpc::Status::OK;
}

grpc::Status FakeCalibrationService::ExportOnnx(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<v1::ExportOnnxResponse, v1::ExportOnnxRequest>* stream) {
  v1::ExportOnnxRequest request;
  while (stream->Read(&request)) {
    absl::MutexLock lock(&mu_);
    export_requests_.push_back(request);
  }
  std::vector<v1::ExportOnnxResponse> messages;
  {
    absl::MutexLock lock(&mu_);
    messages = export_messages_;
  }
  for (const v1::ExportOnnxResponse& message : messages) stream->Write(message);
  return grpc::Status::OK;
}

FakeServer::FakeServer() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(16 << 20);  // qcal-server's default
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
}

FakeServer::~FakeServer() {
  service_.Release();
  server_->Shutdown();
}

std::string FakeServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

}  // namespace qcal::testing
