// The gRPC front-end of qcal.v1.Calibration. Each handler checks and converts the request
// (proto_convert.h), calls one CalibrationCore function, and converts the result; errors become
// gRPC codes in one place (grpc_status.h). No calibration logic lives here. Each handler first
// checks the call's bearer token against its method and model (call_auth.h) when the server has
// --auth-tokens.
#ifndef QCAL_SERVER_RPC_CALIBRATION_SERVICE_H_
#define QCAL_SERVER_RPC_CALIBRATION_SERVICE_H_

#include <cstddef>

#include "absl/status/status.h"
#include "qcal/v1/calibration.grpc.pb.h"
#include "server/auth/token_authority.h"
#include "server/core/calibration_core.h"

namespace qcal::server {

// ExportOnnx sends the model in pieces of this size.
inline constexpr size_t kExportChunkBytes = size_t{1} << 20;
// SaveState sends the state file in pieces of at most this size.
inline constexpr size_t kStateChunkBytes = size_t{4} << 20;

class CalibrationService final : public v1::Calibration::Service {
 public:
  // `tokens` null: no --auth-tokens, every call allowed. Otherwise it outlives the service.
  explicit CalibrationService(CalibrationCore& core, const TokenAuthority* tokens = nullptr)
      : core_(core), tokens_(tokens) {}

  grpc::Status CreateModel(grpc::ServerContext* context, const v1::CreateModelRequest* request,
                           v1::ModelInfo* response) override;
  grpc::Status GetModel(grpc::ServerContext* context, const v1::GetModelRequest* request,
                        v1::ModelInfo* response) override;
  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;
  grpc::Status DeleteModel(grpc::ServerContext* context, const v1::DeleteModelRequest* request,
                           v1::DeleteModelResponse* response) override;
  grpc::Status ResetModel(grpc::ServerContext* context, const v1::ResetModelRequest* request,
                          v1::ModelInfo* response) override;
  grpc::Status Record(grpc::ServerContext* context, grpc::ServerReader<v1::RecordRequest>* reader,
                      v1::RecordResponse* response) override;
  grpc::Status ComputeAmax(grpc::ServerContext* context, const v1::ComputeAmaxRequest* request,
                           v1::AmaxTableResponse* response) override;
  grpc::Status GetAmaxTable(grpc::ServerContext* context, const v1::GetAmaxTableRequest* request,
                            v1::AmaxTableResponse* response) override;
  grpc::Status GetHistogram(grpc::ServerContext* context, const v1::GetHistogramRequest* request,
                            v1::Histogram* response) override;
  grpc::Status UploadOnnx(grpc::ServerContext* context,
                          grpc::ServerReader<v1::UploadOnnxRequest>* reader,
                          v1::UploadOnnxResponse* response) override;
  grpc::Status ExportOnnx(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ExportOnnxResponse, v1::ExportOnnxRequest>* stream) override;
  grpc::Status SaveState(grpc::ServerContext* context, const v1::SaveStateRequest* request,
                         grpc::ServerWriter<v1::StateChunk>* writer) override;
  grpc::Status LoadState(grpc::ServerContext* context,
                         grpc::ServerReader<v1::LoadStateRequest>* reader,
                         v1::ModelInfo* response) override;
  grpc::Status Commit(grpc::ServerContext* context, const v1::CommitRequest* request,
                      v1::CommitResponse* response) override;

 private:
  // Logs a refused call (at debug: bad input is the caller's business), counts it in
  // qcal_rpc_errors_total and converts it.
  grpc::Status Refuse(const char* method, const absl::Status& status);

  CalibrationCore& core_;
  const TokenAuthority* const tokens_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_RPC_CALIBRATION_SERVICE_H_
