// ModelSession against an in-process fake of the Calibration service (fake_calibration_service.h):
// what goes over the wire, the queue's blocking, and where errors surface.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "client/fake_calibration_service.h"
#include "qcal/client.h"
#include "qcal/names.h"

namespace qcal {
namespace {

using testing::FakeServer;

void WaitUntil(const std::function<bool()>& condition) {
  while (!condition()) absl::SleepFor(absl::Milliseconds(1));
}

std::unique_ptr<Client> Connect(const FakeServer& server) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(server.address());
  EXPECT_TRUE(client.ok()) << client.status();
  return *std::move(client);
}

std::vector<float> Ramp(size_t n, float scale) {
  std::vector<float> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = scale * static_cast<float>(i % 1000) - 3.0f;
  return values;
}

std::string Bytes(std::span<const float> values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size_bytes());
}

TensorView View(const std::vector<float>& values, const std::vector<int64_t>& shape) {
  return TensorView{DType::kFloat32, shape, std::as_bytes(std::span(values))};
}

TEST(ModelSessionTest, RecordThenFlushDeliversEachBatchIntact) {
  FakeServer server;
  auto session = Connect(server)->Model("resnet");
  const std::vector<float> a = Ramp(6, 0.5f);
  const std::vector<int64_t> a_shape = {2, 3};
  const std::vector<uint16_t> b = {0x3c00, 0xbc00, 0x4000, 0x0000};  // float16 bits
  const std::vector<int64_t> b_shape = {4};
  ASSERT_TRUE(session->Record("conv1._input_quantizer", View(a, a_shape)).ok());
  ASSERT_TRUE(session
                  ->Record("fc._input_quantizer",
                           TensorView{DType::kFloat16, b_shape, std::as_bytes(std::span(b))})
                  .ok());
  ASSERT_TRUE(session->Flush().ok());

  const auto batches = server.service().batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].model, "resnet");
  EXPECT_EQ(batches[0].quantizer, "conv1._input_quantizer");
  EXPECT_EQ(batches[0].header.dtype(), v1::DTYPE_FLOAT32);
  EXPECT_EQ(batches[0].header.shape_size(), 2);
  EXPECT_EQ(batches[0].data, Bytes(a));
  EXPECT_EQ(batches[1].quantizer, "fc._input_quantizer");
  EXPECT_EQ(batches[1].header.dtype(), v1::DTYPE_FLOAT16);
  EXPECT_EQ(batches[1].data, std::string(reinterpret_cast<const char*>(b.data()), 8));
  EXPECT_EQ(server.service().record_streams_started(), 1);  // both batches on one stream
  const SessionStats stats = session->Stats();
  EXPECT_EQ(stats.applied_batches, 2);
  EXPECT_EQ(stats.applied_bytes, 32);
  EXPECT_EQ(stats.queued_batches, 0u);
}

TEST(ModelSessionTest, RecordCopiesTheTensor) {
  FakeServer server;
  server.service().Hold();  // nothing is sent before the buffer is overwritten
  auto session = Connect(server)->Model("m");
  std::vector<float> values = Ramp(100, 1.0f);
  const std::string original = Bytes(values);
  const std::vector<int64_t> shape = {100};
  ASSERT_TRUE(session->Record("x._input_quantizer", View(values, shape)).ok());
  std::fill(values.begin(), values.end(), 42.0f);
  server.service().Release();
  ASSERT_TRUE(session->Flush().ok());
  ASSERT_EQ(server.service().batches().size(), 1u);
  EXPECT_EQ(server.service().batches()[0].data, original);
}

TEST(ModelSessionTest, TenMiBTensorGoesInChunksOfAtMostFourMiB) {
  FakeServer server;
  auto session = Connect(server)->Model("m");
  const std::vector<float> values = Ramp((size_t{10} << 20) / 4, 0.25f);
  const std::vector<int64_t> shape = {static_cast<int64_t>(values.size())};
  ASSERT_TRUE(session->Record("x._input_quantizer", View(values, shape)).ok());
  ASSERT_TRUE(session->Flush().ok());
  const auto batches = server.service().batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].chunk_sizes,
            (std::vector<size_t>{size_t{4} << 20, size_t{4} << 20, size_t{2} << 20}));
  EXPECT_EQ(batches[0].data, Bytes(values));
}

TEST(ModelSessionTest, ChunkSizeOptionSplitsFiner) {
  FakeServer server;
  SessionOptions options;
  options.chunk_bytes = 7;
  auto session = Connect(server)->Model("m", options);
  const std::vector<float> values = Ramp(5, 1.0f);  // 20 bytes: 7 + 7 + 6
  const std::vector<int64_t> shape = {5};
  ASSERT_TRUE(session->Record("x._input_quantizer", View(values, shape)).ok());
  ASSERT_TRUE(session->Flush().ok());
  ASSERT_EQ(server.service().batches().size(), 1u);
  EXPECT_EQ(server.service().batches()[0].chunk_sizes, (std::vector<size_t>{7, 7, 6}));
  EXPECT_EQ(server.service().batches()[0].data, Bytes(values));
}

TEST(ModelSessionTest, ByteCountNotMatchingTheShapeIsRefusedBeforeSending) {
  FakeServer server;
  auto session = Connect(server)->Model("m");
  const std::vector<float> values = Ramp(5, 1.0f);
  const std::vector<int64_t> shape = {2, 3};
  const absl::Status status = session->Record("x._input_quantizer", View(values, shape));
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("20 data bytes, but shape x dtype (float32) needs 24"),
            absl::string_view::npos)
      << status;
  const std::vector<int64_t> negative = {-5};
  EXPECT_EQ(session->Record("x._input_quantizer", View(values, negative)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session->Record("", View(values, {5})).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(session->Flush().ok());
  EXPECT_TRUE(server.service().batches().empty());
}

TEST(ModelSessionTest, ServerErrorSurfacesAtFlushWithCodeAndMessage) {
  FakeServer server;
  server.service().Refuse("bad._input_quantizer",
                          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "model 'm', quantizer 'bad._input_quantizer': axis 3 is "
                                       "out of range for rank 2"));
  auto session = Connect(server)->Model("m");
  const std::vector<float> values = Ramp(4, 1.0f);
  const std::vector<int64_t> shape = {2, 2};
  ASSERT_TRUE(session->Record("good._input_quantizer", View(values, shape)).ok());
  ASSERT_TRUE(session->Record("bad._input_quantizer", View(values, shape)).ok());
  const absl::Status flushed = session->Flush();
  EXPECT_EQ(flushed, absl::InvalidArgumentError("model 'm', quantizer 'bad._input_quantizer': "
                                                "axis 3 is out of range for rank 2"));
  // The batch before the refused one was applied, the refused one was not.
  ASSERT_EQ(server.service().batches().size(), 1u);
  EXPECT_EQ(server.service().batches()[0].quantizer, "good._input_quantizer");

  // The error was returned once; the session works again on a new stream.
  ASSERT_TRUE(session->Record("good._input_quantizer", View(values, shape)).ok());
  EXPECT_TRUE(session->Flush().ok());
  EXPECT_EQ(server.service().batches().size(), 2u);
  EXPECT_EQ(server.service().record_streams_started(), 2);
}

TEST(ModelSessionTest, ServerErrorSurfacesAtALaterRecord) {
  FakeServer server;
  server.service().Refuse("bad._input_quantizer",
                          grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "batch too large"));
  auto session = Connect(server)->Model("m");
  const std::vector<float> values = Ramp(1024, 1.0f);
  const std::vector<int64_t> shape = {1024};
  ASSERT_TRUE(session->Record("bad._input_quantizer", View(values, shape)).ok());
  // The refusal reaches the sender when it next writes to the dead stream; some Record() after
  // that returns it instead of queuing.
  absl::Status status;
  int records = 0;
  while (status.ok()) {
    status = session->Record("good._input_quantizer", View(values, shape));
    ++records;
  }
  EXPECT_EQ(status, absl::ResourceExhaustedError("batch too large"));
  EXPECT_TRUE(session->Flush().ok());  // already reported
  // Nothing recorded after the refused batch on that stream was applied; the failing Record()
  // queued nothing.
  EXPECT_TRUE(server.service().batches().empty());
  EXPECT_EQ(session->Stats().queued_batches, 0u);
  EXPECT_GE(records, 1);
}

TEST(ModelSessionTest, RecordBlocksWhenTheQueueIsFullAndDropsNothing) {
  FakeServer server;
  server.service().Hold();
  SessionOptions options;
  options.max_queue_bytes = size_t{1} << 20;
  auto session = Connect(server)->Model("m", options);
  constexpr int kBatches = 32;
  std::vector<std::vector<float>> tensors;
  for (int i = 0; i < kBatches; ++i) tensors.push_back(Ramp((size_t{1} << 20) / 4, 1.0f + i));
  const std::vector<int64_t> shape = {static_cast<int64_t>(tensors[0].size())};
  std::thread producer([&] {
    for (const auto& tensor : tensors) {
      const absl::Status status = session->Record("x._input_quantizer", View(tensor, shape));
      EXPECT_TRUE(status.ok()) << status;
    }
  });
  // The held server reads nothing, so the transport fills and a Record() call has to wait.
  WaitUntil([&] { return session->Stats().blocked_records == 1; });
  EXPECT_LE(session->Stats().queued_bytes, size_t{1} << 20);
  server.service().Release();
  producer.join();
  ASSERT_TRUE(session->Flush().ok());
  const auto batches = server.service().batches();
  ASSERT_EQ(batches.size(), static_cast<size_t>(kBatches));
  for (int i = 0; i < kBatches; ++i) EXPECT_EQ(batches[i].data, Bytes(tensors[i])) << i;
  EXPECT_EQ(session->Stats().dropped_batches, 0);
}

TEST(ModelSessionTest, UnaryErrorsKeepCodeAndMessage) {
  FakeServer server;
  auto client = Connect(server);
  absl::StatusOr<v1::ModelInfo> info = client->GetModel("missing");
  EXPECT_EQ(info.status(), absl::NotFoundError("model 'missing' not found"));
  // A server the fake does not implement answers UNIMPLEMENTED; nothing listening, UNAVAILABLE.
  EXPECT_EQ(client->ListModels().status().code(), absl::StatusCode::kUnimplemented);
  auto nowhere = Client::Create("127.0.0.1:1");
  ASSERT_TRUE(nowhere.ok());
  EXPECT_EQ((*nowhere)->ListModels().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Client::Create("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ModelSessionTest, ComputeAmaxSendsMethodParametersAndOverrides) {
  FakeServer server;
  auto session = Connect(server)->Model("m");
  ComputeAmaxOptions options;
  options.method = "entropy";
  options.start_bin = 64;
  options.stride = 2;
  AmaxMethod percentile;
  percentile.method = "percentile";
  percentile.percentile = 99.9;
  options.overrides["fc._input_quantizer"] = percentile;
  absl::StatusOr<v1::AmaxTable> table = session->ComputeAmax(options);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->method(), "entropy");
  const auto requests = server.service().compute_requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].model(), "m");
  EXPECT_EQ(requests[0].start_bin(), 64);
  EXPECT_EQ(requests[0].stride(), 2);
  EXPECT_EQ(requests[0].percentile(), 0);  // unset: the server's default
  ASSERT_EQ(requests[0].overrides_size(), 1);
  EXPECT_EQ(requests[0].overrides(0).key(), "fc._input_quantizer");
  EXPECT_EQ(requests[0].overrides(0).value().method(), "percentile");
  EXPECT_EQ(requests[0].overrides(0).value().percentile(), 99.9);
}

TEST(ModelSessionTest, ExplicitZeroParametersAreRefusedBecauseTheWireReadsZeroAsDefault) {
  FakeServer server;
  auto session = Connect(server)->Model("m");
  ComputeAmaxOptions options;
  options.method = "percentile";
  options.percentile = 0.0;
  EXPECT_EQ(session->ComputeAmax(options).status(),
            absl::InvalidArgumentError("model 'm': percentile 0 is outside (0, 100]"));
  options = ComputeAmaxOptions();
  options.method = "entropy";
  AmaxMethod mse;
  mse.method = "mse";
  mse.stride = 0;
  options.overrides["q"] = mse;
  EXPECT_EQ(session->ComputeAmax(options).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(server.service().compute_requests().empty());
}

TEST(ModelSessionTest, MethodParametersAreCheckedBeforeSending) {
  FakeServer server;
  auto session = Connect(server)->Model("m");
  const auto refused = [&](const ComputeAmaxOptions& options) {
    return session->ComputeAmax(options).status();
  };
  ComputeAmaxOptions options;
  options.method = "percentile";
  options.percentile = 100.0001;  // printed in full, not rounded to "100"
  EXPECT_EQ(refused(options),
            absl::InvalidArgumentError("model 'm': percentile 100.0001 is outside (0, 100]"));
  options.percentile = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(refused(options),
            absl::InvalidArgumentError("model 'm': percentile nan is outside (0, 100]"));
  options.percentile = 99.0;
  options.method = "entropy";
  EXPECT_EQ(refused(options),
            absl::InvalidArgumentError(
                "model 'm': percentile applies only to method percentile, not 'entropy'"));
  options = ComputeAmaxOptions();
  options.method = "max";
  options.start_bin = 64;
  EXPECT_EQ(refused(options),
            absl::InvalidArgumentError(
                "model 'm': start_bin applies only to methods entropy and mse, not 'max'"));
  options.method = "mse";
  options.start_bin = -5;
  EXPECT_EQ(refused(options),
            absl::InvalidArgumentError("model 'm': start_bin must be >= 1, got -5"));
  options.start_bin.reset();
  AmaxMethod percentile;
  percentile.method = "percentile";
  percentile.stride = 2;
  options.overrides["fc._input_quantizer"] = percentile;
  EXPECT_EQ(refused(options),
            absl::InvalidArgumentError("model 'm': override of quantizer 'fc._input_quantizer': "
                                       "stride applies only to methods entropy and mse, not "
                                       "'percentile'"));
  options.overrides.clear();
  options.method = "\xff";
  EXPECT_EQ(refused(options).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(server.service().compute_requests().empty());
}

// Each name goes through qcal/names.h before anything is sent: protobuf would refuse to
// serialize non-UTF-8 (a bare INTERNAL error), and a newline would forge TensorRT cache lines.
TEST(ModelSessionTest, BadNamesAreRefusedBeforeAnythingIsSent) {
  FakeServer server;
  std::unique_ptr<Client> client = Connect(server);
  const std::vector<float> values = Ramp(4, 1.0f);
  const std::vector<int64_t> shape = {4};
  const auto expect_refused = [](const absl::Status& status, const std::string& what) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(std::string(status.message()).find(what), std::string::npos) << status;
  };
  for (const std::string& bad : {std::string("\xff\xfe"), std::string(), std::string("a\nb"),
                                 std::string("tab\t"), std::string(kMaxNameBytes + 1, 'm')}) {
    SCOPED_TRACE(absl::CHexEscape(bad.substr(0, 8)));
    // The fake answers these with UNIMPLEMENTED (or NOT_FOUND): INVALID_ARGUMENT is the client's.
    expect_refused(client->CreateModel(bad).status(), "model name");
    expect_refused(client->GetModel(bad).status(), "model name");
    expect_refused(client->DeleteModel(bad), "model name");
    expect_refused(client->ResetModel(bad).status(), "model name");
    v1::CreateModelRequest request;
    request.set_model("m");
    request.add_quantizers()->set_name(bad);
    expect_refused(client->CreateModel(request).status(), "quantizer name");

    auto bad_model = client->Model(bad);
    expect_refused(bad_model->Record("x._input_quantizer", View(values, shape)), "model name");
    expect_refused(bad_model->Info().status(), "model name");
    expect_refused(bad_model->Reset().status(), "model name");
    expect_refused(bad_model->ComputeAmax({}).status(), "model name");
    expect_refused(bad_model->AmaxTable().status(), "model name");
    expect_refused(bad_model->Histogram("x._input_quantizer").status(), "model name");
    expect_refused(bad_model->UploadOnnx("onnx").status(), "model name");
    expect_refused(bad_model->ExportOnnx().status(), "model name");
    EXPECT_TRUE(bad_model->Flush().ok());  // nothing was queued

    auto session = client->Model("m");
    expect_refused(session->Record(bad, View(values, shape)), "model 'm': quantizer name");
    expect_refused(session->Histogram(bad).status(), "model 'm': quantizer name");
    ComputeAmaxOptions options;
    options.overrides[bad] = AmaxMethod();
    expect_refused(session->ComputeAmax(options).status(), "quantizer name of an override");
    expect_refused(session->UploadOnnx("onnx", {{bad, "input"}}).status(), "quantizer name");
    expect_refused(session->UploadOnnx("onnx", {{"x._input_quantizer", bad}}).status(),
                   "ONNX tensor name");
    ExportOptions export_options;
    export_options.tensor_map[bad] = "input";
    expect_refused(session->ExportOnnx("onnx", export_options).status(), "quantizer name");
    EXPECT_TRUE(session->Flush().ok());
  }
  EXPECT_EQ(server.service().record_streams_started(), 0);
  EXPECT_TRUE(server.service().compute_requests().empty());
  EXPECT_TRUE(server.service().upload_messages().empty());
}

TEST(ModelSessionTest, UploadOnnxSendsChunksAndTheTensorMapOnce) {
  FakeServer server;
  auto session = Connect(server)->Model("m");
  std::string onnx((size_t{9} << 20) + 5, '\0');
  for (size_t i = 0; i < onnx.size(); ++i) onnx[i] = static_cast<char>(i * 7919 % 256);
  absl::StatusOr<v1::UploadOnnxResponse> response =
      session->UploadOnnx(onnx, {{"fc._input_quantizer", "input.7"}});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->bytes(), static_cast<int64_t>(onnx.size()));
  const auto messages = server.service().upload_messages();
  ASSERT_EQ(messages.size(), 3u);
  std::string joined;
  for (const auto& message : messages) {
    EXPECT_LE(message.data().size(), kMaxChunkBytes);
    joined += message.data();
  }
  EXPECT_EQ(joined, onnx);
  EXPECT_EQ(messages[0].model(), "m");
  ASSERT_EQ(messages[0].tensor_map_size(), 1);
  EXPECT_EQ(messages[0].tensor_map(0).key(), "fc._input_quantizer");
  EXPECT_EQ(messages[0].tensor_map(0).value(), "input.7");
  EXPECT_TRUE(messages[1].model().empty());
  EXPECT_TRUE(messages[1].tensor_map().empty());
}

TEST(ModelSessionTest, ExportOnnxJoinsChunksAndWarnings) {
  FakeServer server;
  std::vector<v1::ExportOnnxResponse> messages(3);
  messages[0].set_data("abc");
  messages[0].add_warnings("conv1.weight channel 3: amax 0, scale 1");
  messages[0].set_amax_method("entropy");
  messages[1].set_data("defg");
  messages[1].set_amax_method("first message only");
  messages[2].set_data("h");
  server.service().SetExportMessages(messages);
  auto session = Connect(server)->Model("m");
  absl::StatusOr<ExportResult> result = session->ExportOnnx();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->onnx, "abcdefgh");
  EXPECT_EQ(result->warnings,
            (std::vector<std::string>{"conv1.weight channel 3: amax 0, scale 1"}));
  EXPECT_EQ(result->amax_method, "entropy");
  EXPECT_FALSE(result->computed_table);
  result = session->ExportOnnx(std::nullopt, {.compute = ComputeAmaxOptions{.method = "mse"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->computed_table);
}

// ExportOptions::explain goes out in the first request; the first response's entries come back
// with their decision as text, later messages' are ignored as the wire contract says.
TEST(ModelSessionTest, ExportOnnxExplainIsSentAndParsed) {
  FakeServer server;
  std::vector<v1::ExportOnnxResponse> messages(2);
  messages[0].set_data("ab");
  v1::ExplainEntry* e = messages[0].add_explain();
  e->set_node("/layer1/layer1.0/Add");
  e->set_op_type("Add");
  e->set_input(1);
  e->set_tensor("x");
  e->set_decision(v1::EXPLAIN_DECISION_SKIPPED);
  e->set_quantizer("layer1.0.residual_quantizer");
  e->set_rule("residual add shortcut");
  e->set_reason("no residual quantizer recorded");
  messages[1].set_data("c");
  messages[1].add_explain()->set_node("ignored");
  server.service().SetExportMessages(messages);
  auto session = Connect(server)->Model("m");
  ExportOptions options;
  options.explain = true;
  absl::StatusOr<ExportResult> result = session->ExportOnnx(std::nullopt, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->onnx, "abc");
  ASSERT_EQ(result->explain.size(), 1u);
  const ExplainEntry& got = result->explain[0];
  EXPECT_EQ(got.node, "/layer1/layer1.0/Add");
  EXPECT_EQ(got.op_type, "Add");
  EXPECT_EQ(got.input, 1);
  EXPECT_EQ(got.tensor, "x");
  EXPECT_EQ(got.decision, "skipped");
  EXPECT_EQ(got.quantizer, "layer1.0.residual_quantizer");
  EXPECT_EQ(got.rule, "residual add shortcut");
  EXPECT_EQ(got.reason, "no residual quantizer recorded");
  const std::vector<v1::ExportOnnxRequest> sent = server.service().export_requests();
  ASSERT_FALSE(sent.empty());
  EXPECT_TRUE(sent[0].explain());
}

// An empty ONNX model would reach the server as "no data", i.e. "export the stored model".
TEST(ModelSessionTest, ExportOfEmptyOnnxBytesIsRefusedBeforeSending) {
  FakeServer server;
  auto session = Connect(server)->Model("m");
  const absl::Status status = session->ExportOnnx(std::string_view()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "model 'm': the ONNX model given to ExportOnnx is empty (0 bytes)");
  EXPECT_TRUE(server.service().export_requests().empty());
}

}  // namespace
}  // namespace qcal
