// Model-affine routing: the `qcal-model` metadata value (qcal/routing.h), and that every call the
// client library makes for a model carries it, against the real service in-process. A router
// hashes only what the client sends: a call without the header would land on any replica.
#include "qcal/routing.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "qcal/client.h"
#include "server/core/calibration_core.h"
#include "server/rpc/calibration_service.h"

namespace qcal {
namespace {

TEST(ModelMetadataValueTest, PrintableAsciiStaysAsItIs) {
  EXPECT_EQ(ModelMetadataValue("resnet50/v1.2_int8-[a]"), "resnet50/v1.2_int8-[a]");
}

TEST(ModelMetadataValueTest, SpacePercentAndNonAsciiArePercentEncoded) {
  EXPECT_EQ(ModelMetadataValue("mod\xC3\xA8le 1"), "mod%C3%A8le%201");
  EXPECT_EQ(ModelMetadataValue("50%"), "50%25");
  EXPECT_EQ(ModelMetadataValue("\xE6\xA8\xA1\xE5\x9E\x8B"), "%E6%A8%A1%E5%9E%8B");
}

TEST(ModelMetadataValueTest, DistinctNamesGiveDistinctValues) {
  // "%25" as a name must not collide with "%" encoded.
  EXPECT_NE(ModelMetadataValue("%25"), ModelMetadataValue("%"));
  EXPECT_EQ(ModelMetadataValue("%25"), "%2525");
}

// Remembers, per method, the qcal-model values its calls carried ("" for a call without one).
class MetadataLog {
 public:
  void Add(const std::string& method, std::string value) {
    absl::MutexLock lock(&mu_);
    values_[method].push_back(std::move(value));
  }
  std::map<std::string, std::vector<std::string>> values() const {
    absl::MutexLock lock(&mu_);
    return values_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<std::string>> values_ ABSL_GUARDED_BY(mu_);
};

class Recorder : public grpc::experimental::Interceptor {
 public:
  Recorder(grpc::experimental::ServerRpcInfo* info, MetadataLog* log)
      : method_(info->method()), log_(log) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      std::string value;
      for (const auto& [key, found] : *methods->GetRecvInitialMetadata()) {
        if (key == kModelMetadataKey) value = std::string(found.data(), found.size());
      }
      // "/qcal.v1.Calibration/GetModel" -> "GetModel"
      log_->Add(method_.substr(method_.rfind('/') + 1), value);
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  MetadataLog* log_;
};

class RecorderFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RecorderFactory(MetadataLog* log) : log_(log) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new Recorder(info, log_);
  }

 private:
  MetadataLog* log_;
};

TEST(ModelMetadataTest, EveryCallNamingAModelCarriesIt) {
  server::Metrics metrics;
  server::CalibrationCore core({}, metrics);
  server::CalibrationService service(core);
  MetadataLog log;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<RecorderFactory>(&log));
  builder.experimental().SetInterceptorCreators(std::move(factories));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  const std::string model = "mod\xC3\xA8le 50%";
  const std::string copy = "copy of it";
  auto client = Client::Create(absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->CreateModel(model).ok());
  ASSERT_TRUE((*client)->GetModel(model).ok());
  ASSERT_TRUE((*client)->ListModels().ok());
  {
    auto session = (*client)->Model(model);
    const std::vector<float> values = {0.5f, -1.0f, 2.0f, 0.25f};
    const std::vector<int64_t> shape = {4};
    ASSERT_TRUE(session
                    ->Record("x._input_quantizer",
                             TensorView{DType::kFloat32, shape, std::as_bytes(std::span(values))})
                    .ok());
    ASSERT_TRUE(session->Commit().ok());
    ASSERT_TRUE(session->ComputeAmax(ComputeAmaxOptions()).ok());
    ASSERT_TRUE(session->AmaxTable().ok());
    ASSERT_TRUE(session->Histogram("x._input_quantizer").ok());
    // Not ONNX: refused, but the call went out (and so did its metadata).
    EXPECT_FALSE(session->UploadOnnx("not onnx").ok());
    EXPECT_FALSE(session->ExportOnnx(std::string_view("not onnx")).ok());
    ASSERT_TRUE(session->Reset().ok());
  }
  ASSERT_TRUE((*client)->Commit(model).ok());
  absl::StatusOr<std::string> state = (*client)->SaveState(model);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE((*client)->LoadState(copy, *state).ok());
  ASSERT_TRUE((*client)->ResetModel(model).ok());
  ASSERT_TRUE((*client)->DeleteModel(model).ok());
  server->Shutdown();

  const std::string encoded = "mod%C3%A8le%2050%25";
  const std::map<std::string, std::vector<std::string>> seen = log.values();
  for (const char* method :
       {"CreateModel", "GetModel", "Record", "Commit", "ComputeAmax", "GetAmaxTable",
        "GetHistogram", "UploadOnnx", "ExportOnnx", "SaveState", "ResetModel", "DeleteModel"}) {
    ASSERT_TRUE(seen.contains(method)) << method << " was not called";
    for (const std::string& value : seen.at(method)) EXPECT_EQ(value, encoded) << method;
  }
  ASSERT_TRUE(seen.contains("LoadState"));
  EXPECT_EQ(seen.at("LoadState"), std::vector<std::string>{"copy%20of%20it"});
  // ListModels names no model: a router sends it anywhere.
  EXPECT_EQ(seen.at("ListModels"), std::vector<std::string>{""});
}

}  // namespace
}  // namespace qcal
