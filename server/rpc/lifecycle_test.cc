// The server's lifecycle and limits over the wire (issue 10, items 4 and 5): the standard health
// service (grpc.health.v1, SERVING while up, NOT_SERVING from the start of a shutdown), idle
// Record streams ended by the server, and --max-models for CreateModel and LoadState.
#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "prometheus/text_serializer.h"
#include "qcal/v1/calibration.grpc.pb.h"
#include "server/rpc/qcal_server.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

// grpc.health.v1.HealthCheckResponse.ServingStatus.
constexpr int kServing = 1;
constexpr int kNotServing = 2;

// grpc.health.v1.Health/Check of `service`, over the wire with the messages hand-encoded (the
// health proto is not among this build's protos): HealthCheckRequest{service = 1} and
// HealthCheckResponse{status = 1}. The status, or -1 with `error` set when the call fails.
int HealthCheck(grpc::Channel& channel, const std::string& service, grpc::Status* error = nullptr) {
  std::string request;
  if (!service.empty()) {
    request.push_back('\x0a');
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request_buffer,
                 &response_buffer, [&](grpc::Status got) {
                   status = std::move(got);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) {
    if (error != nullptr) *error = status;
    return -1;
  }
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(response_buffer.Dump(&slices).ok());
  std::string response;
  for (const grpc::Slice& piece : slices)
    response.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
  if (response.empty()) return 0;  // UNKNOWN, the default, is not encoded
  EXPECT_EQ(response.size(), 2u);
  EXPECT_EQ(response[0], '\x08');
  return response[1];
}

std::string FloatBytes(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

v1::RecordRequest Header(const std::string& model, const std::string& quantizer, int64_t size) {
  v1::RecordRequest request;
  request.set_model(model);
  request.set_quantizer(quantizer);
  request.mutable_header()->set_dtype(v1::DTYPE_FLOAT32);
  request.mutable_header()->add_shape(size);
  return request;
}

// The server's metrics as a scrape would show them.
std::string Scrape(QcalServer& server) {
  return prometheus::TextSerializer().Serialize(server.core().metrics().registry()->Collect());
}

class LifecycleTest : public ::testing::Test {
 protected:
  // Options are set field by field: GCC 12 warns (wrongly) of an uninitialized shared_ptr in a
  // braced ServerOptions passed by value.
  void Start(const std::function<void(ServerOptions&)>& set = nullptr) {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    if (set) set(options);
    absl::StatusOr<std::unique_ptr<QcalServer>> server = QcalServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(server_->grpc_address(), grpc::InsecureChannelCredentials());
    stub_ = v1::Calibration::NewStub(channel_);
  }

  grpc::Status CreateModel(const std::string& name) {
    v1::CreateModelRequest request;
    request.set_model(name);
    grpc::ClientContext context;
    v1::ModelInfo info;
    return stub_->CreateModel(&context, request, &info);
  }

  std::vector<std::string> ModelNames() {
    grpc::ClientContext context;
    v1::ListModelsResponse response;
    EXPECT_TRUE(stub_->ListModels(&context, {}, &response).ok());
    std::vector<std::string> names;
    for (const v1::ModelInfo& info : response.models()) names.push_back(info.name());
    return names;
  }

  std::unique_ptr<QcalServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Calibration::Stub> stub_;
};

TEST_F(LifecycleTest, HealthIsServingWhileUpAndNotServingOnceShutdownBegins) {
  Start();
  EXPECT_EQ(HealthCheck(*channel_, ""), kServing);
  EXPECT_EQ(HealthCheck(*channel_, "qcal.v1.Calibration"), kServing);
  grpc::Status unknown;
  EXPECT_EQ(HealthCheck(*channel_, "no.such.Service", &unknown), -1);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);

  server_->SetServing(false);
  EXPECT_EQ(HealthCheck(*channel_, ""), kNotServing);
  EXPECT_EQ(HealthCheck(*channel_, "qcal.v1.Calibration"), kNotServing);
  server_->SetServing(true);
  EXPECT_EQ(HealthCheck(*channel_, "qcal.v1.Calibration"), kServing);

  // A Record stream in flight holds Shutdown in its wait for running calls: meanwhile the server
  // still answers, NOT_SERVING.
  ASSERT_TRUE(CreateModel("m").ok());
  grpc::ClientContext context;
  v1::RecordResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::RecordRequest>> writer =
      stub_->Record(&context, &response);
  v1::RecordRequest batch = Header("m", "x._input_quantizer", 2);
  batch.set_data(FloatBytes({1.0f, 2.0f}));
  ASSERT_TRUE(writer->Write(batch));
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (server_->core().metrics().rpcs_in_flight() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  std::thread shutdown([this] { server_->Shutdown(); });
  int status = kServing;
  while (status == kServing && absl::Now() < deadline) status = HealthCheck(*channel_, "");
  EXPECT_EQ(status, kNotServing);
  writer->WritesDone();
  EXPECT_TRUE(writer->Finish().ok());
  shutdown.join();
}

TEST_F(LifecycleTest, AnIdleRecordStreamIsEndedAndItsAppliedBatchesStay) {
  Start([](ServerOptions& options) { options.stream_idle_seconds = 1; });
  ASSERT_TRUE(CreateModel("m").ok());
  grpc::ClientContext context;
  // Generous: the server ends the stream after 1 s idle; this only keeps a broken test finite.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::RecordResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::RecordRequest>> writer =
      stub_->Record(&context, &response);
  v1::RecordRequest whole = Header("m", "x._input_quantizer", 2);
  whole.set_data(FloatBytes({1.0f, 2.0f}));
  ASSERT_TRUE(writer->Write(whole));
  // Half a batch, then silence.
  v1::RecordRequest half = Header("m", "x._input_quantizer", 4);
  half.set_data(FloatBytes({7.0f, 8.0f}));
  ASSERT_TRUE(writer->Write(half));
  const grpc::Status ended = writer->Finish();  // returns once the server ends the stream
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::CANCELLED) << ended.error_message();
  EXPECT_EQ(ended.error_message(),
            "model 'm', Record: the server received nothing on this stream for "
            "--stream-idle-seconds 1 and ended it; a batch left half sent was dropped; the "
            "batches before it stay applied");
  EXPECT_EQ(server_->core().stream_watchdog().ended(), 1);
  EXPECT_THAT(Scrape(*server_), HasSubstr("\nqcal_record_streams_idle_ended_total 1\n"));

  grpc::ClientContext get;
  v1::GetModelRequest request;
  request.set_model("m");
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModel(&get, request, &info).ok());
  ASSERT_EQ(info.quantizers_size(), 1);
  EXPECT_EQ(info.quantizers(0).batches(), 1);   // the whole batch stayed applied
  EXPECT_EQ(info.quantizers(0).elements(), 2);  // the half one changed nothing
}

TEST_F(LifecycleTest, CreateModelAndLoadStatePastMaxModelsAreRefused) {
  Start([](ServerOptions& options) { options.max_models = 1; });
  ASSERT_TRUE(CreateModel("a").ok());
  const grpc::Status refused = CreateModel("b");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(),
              HasSubstr("model 'b': the server holds 1 models, its --max-models 1"));

  std::string file;
  {
    grpc::ClientContext context;
    v1::SaveStateRequest request;
    request.set_model("a");
    std::unique_ptr<grpc::ClientReader<v1::StateChunk>> reader =
        stub_->SaveState(&context, request);
    for (v1::StateChunk chunk; reader->Read(&chunk);) file += chunk.data();
    ASSERT_TRUE(reader->Finish().ok());
  }
  grpc::ClientContext context;
  v1::ModelInfo info;
  std::unique_ptr<grpc::ClientWriter<v1::LoadStateRequest>> writer =
      stub_->LoadState(&context, &info);
  v1::LoadStateRequest request;
  request.set_model("c");
  request.set_data(file);
  ASSERT_TRUE(writer->Write(request));
  writer->WritesDone();
  const grpc::Status load = writer->Finish();
  EXPECT_EQ(load.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(load.error_message(), HasSubstr("--max-models 1"));
  EXPECT_EQ(ModelNames(), std::vector<std::string>{"a"});
  const std::string scraped = Scrape(*server_);
  EXPECT_THAT(scraped, HasSubstr("\nqcal_models 1\n"));
  EXPECT_THAT(scraped, HasSubstr(absl::StrCat("qcal_state_bytes{kind=\"used\"} ",
                                              server_->core().state_budget().used_bytes(), "\n")));
  EXPECT_THAT(scraped, HasSubstr(absl::StrCat("qcal_state_bytes{kind=\"limit\"} ",
                                              server_->core().state_budget().limit_bytes(), "\n")));
}

}  // namespace
}  // namespace qcal::server
