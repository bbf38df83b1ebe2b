// An in-process stand-in for qcal-server, for the client's unit tests: it reassembles Record
// batches by the chunking contract of calibration.proto and remembers every message, so tests can
// check what went over the wire. It can refuse a quantizer's batches and hold Record streams.
#ifndef QCAL_CLIENT_FAKE_CALIBRATION_SERVICE_H_
#define QCAL_CLIENT_FAKE_CALIBRATION_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "qcal/v1/calibration.grpc.pb.h"

namespace qcal::testing {

class FakeCalibrationService final : public v1::Calibration::Service {
 public:
  struct Batch {
    std::string model;
    std::string quantizer;
    v1::TensorHeader header;
    std::string data;
    // Data bytes of each message the batch came in.
    std::vector<size_t> chunk_sizes;
    // A pre-aggregated batch (RecordRequest.partial): header and data are then empty.
    std::optional<v1::PartialState> partial;
  };

  // Batches of `quantizer` are refused with `status` as soon as their header arrives.
  void Refuse(const std::string& quantizer, grpc::Status status);
  // While held, Record handlers wait before reading anything.
  void Hold();
  void Release();

  std::vector<Batch> batches() const;  // applied batches, in order
  int record_streams_started() const;  // Record handlers entered so far
  std::vector<v1::ComputeAmaxRequest> compute_requests() const;
  std::vector<v1::UploadOnnxRequest> upload_messages() const;
  std::vector<v1::ExportOnnxRequest> export_requests() const;  // every ExportOnnx message read

  // ExportOnnx streams these messages back (after reading the whole request stream).
  void SetExportMessages(std::vector<v1::ExportOnnxResponse> messages);
  // GetModel answers `info` for its model (whatever was recorded).
  void SetModelInfo(v1::ModelInfo info);
  // GetModel calls served so far.
  int get_model_calls() const;

  // Record: the chunking contract, applying complete batches.
  grpc::Status Record(grpc::ServerContext* context, grpc::ServerReader<v1::RecordRequest>* reader,
                      v1::RecordResponse* response) override;
  // GetModel: the info given to SetModelInfo for its model; otherwise NOT_FOUND "model 'NAME' not
  // found" unless the model has records.
  grpc::Status GetModel(grpc::ServerContext* context, const v1::GetModelRequest* request,
                        v1::ModelInfo* response) override;
  // ComputeAmax: remembers the request, returns a table naming the model and method, with json
  // "{method}", trt_cache "trt {method}" and one warning "warning {method}".
  grpc::Status ComputeAmax(grpc::ServerContext* context, const v1::ComputeAmaxRequest* request,
                           v1::AmaxTableResponse* response) override;
  grpc::Status UploadOnnx(grpc::ServerContext* context,
                          grpc::ServerReader<v1::UploadOnnxRequest>* reader,
                          v1::UploadOnnxResponse* response) override;
  grpc::Status ExportOnnx(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ExportOnnxResponse, v1::ExportOnnxRequest>* stream) override;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, grpc::Status> refused_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  int record_streams_started_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Batch> batches_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ComputeAmaxRequest> compute_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::UploadOnnxRequest> upload_messages_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ExportOnnxRequest> export_requests_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ExportOnnxResponse> export_messages_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::ModelInfo> infos_ ABSL_GUARDED_BY(mu_);
  int get_model_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// The fake on a loopback port picked by the system; shut down on destruction.
class FakeServer {
 public:
  FakeServer();
  ~FakeServer();

  std::string address() const;
  FakeCalibrationService& service() { return service_; }

 private:
  FakeCalibrationService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace qcal::testing

#endif  // QCAL_CLIENT_FAKE_CALIBRATION_SERVICE_H_
