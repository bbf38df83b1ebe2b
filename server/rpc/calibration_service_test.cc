// The real gRPC service, started in-process on loopback and called through the generated stub.
// Covers the contract of proto/qcal/v1/calibration.proto: lifecycle, chunking, every bad input of
// the issue (code, message, and no state change), non-finite values, concurrent streams, ONNX
// upload / export, and /metrics + /healthz over HTTP.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "kernels/histogram.h"
#include "onnx/onnx_pb.h"
#include "qcal/v1/calibration.grpc.pb.h"
#include "server/base/listen_check.h"
#include "server/core/inflight_budget.h"
#include "server/rpc/qcal_server.h"

namespace qcal::server {
namespace {

// An override for `quantizer`, added to `request` (a map entry on the wire).
v1::MethodOverride* Override(v1::ComputeAmaxRequest* request, const std::string& quantizer) {
  v1::OverrideEntry* entry = request->add_overrides();
  entry->set_key(quantizer);
  return entry->mutable_value();
}

// Adds the pair quantizer -> tensor to a request's tensor_map.
template <typename Request>
void SetTensor(Request* request, const std::string& quantizer, const std::string& tensor) {
  v1::TensorMapEntry* entry = request->add_tensor_map();
  entry->set_key(quantizer);
  entry->set_value(tensor);
}

using ::testing::HasSubstr;

std::string FloatBytes(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string TestModelPath(const std::string& name) {
  return std::string(QCAL_SOURCE_DIR) + "/server/onnx/testdata/" + name;
}

// One batch as Record messages: the header in the first, then `chunk`-byte pieces of data.
std::vector<v1::RecordRequest> Batch(const std::string& model, const std::string& quantizer,
                                     v1::DType dtype, const std::vector<int64_t>& shape,
                                     const std::string& bytes, size_t chunk) {
  std::vector<v1::RecordRequest> messages(1);
  messages[0].set_model(model);
  messages[0].set_quantizer(quantizer);
  messages[0].mutable_header()->set_dtype(dtype);
  for (int64_t dim : shape) messages[0].mutable_header()->add_shape(dim);
  for (size_t offset = 0; offset < bytes.size(); offset += chunk) {
    if (offset > 0) messages.emplace_back();
    messages.back().set_data(bytes.substr(offset, chunk));
  }
  return messages;
}

std::vector<v1::RecordRequest> FloatBatch(const std::string& model, const std::string& quantizer,
                                          const std::vector<int64_t>& shape,
                                          const std::vector<float>& values,
                                          size_t chunk = 1 << 20) {
  return Batch(model, quantizer, v1::DTYPE_FLOAT32, shape, FloatBytes(values), chunk);
}

std::vector<v1::RecordRequest> Concat(std::vector<std::vector<v1::RecordRequest>> parts) {
  std::vector<v1::RecordRequest> out;
  for (auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

struct RecordResult {
  grpc::Status status;
  v1::RecordResponse response;
};

// A raw HTTP/1.0 GET on 127.0.0.1:port; returns the whole response (status line, headers, body).
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return "connect failed";
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  EXPECT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  for (ssize_t got; (got = recv(fd, buffer, sizeof(buffer), 0)) > 0;) response.append(buffer, got);
  close(fd);
  return response;
}

class CalibrationServiceTest : public ::testing::Test {
 protected:
  // Without HTTP: only the HTTP test needs it.
  void SetUp() override { Start({.listen = "127.0.0.1:0"}); }

  void Start(const ServerOptions& options) {
    absl::StatusOr<std::unique_ptr<QcalServer>> server = QcalServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Calibration::NewStub(
        grpc::CreateChannel(server_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status CreateModel(const std::string& name, v1::CreateModelRequest request = {}) {
    request.set_model(name);
    grpc::ClientContext context;
    v1::ModelInfo info;
    return stub_->CreateModel(&context, request, &info);
  }

  RecordResult Record(const std::vector<v1::RecordRequest>& messages) {
    RecordResult result;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientWriter<v1::RecordRequest>> writer =
        stub_->Record(&context, &result.response);
    for (const v1::RecordRequest& message : messages) {
      if (!writer->Write(message)) break;  // the server ended the stream
    }
    writer->WritesDone();
    result.status = writer->Finish();
    return result;
  }

  v1::ModelInfo GetModel(const std::string& name, grpc::Status* status = nullptr) {
    v1::GetModelRequest request;
    request.set_model(name);
    grpc::ClientContext context;
    v1::ModelInfo info;
    const grpc::Status got = stub_->GetModel(&context, request, &info);
    if (status != nullptr) {
      *status = got;
    } else {
      EXPECT_TRUE(got.ok()) << got.error_message();
    }
    return info;
  }

  grpc::Status GetHistogram(const std::string& model, const std::string& quantizer,
                            v1::Histogram* histogram) {
    v1::GetHistogramRequest request;
    request.set_model(model);
    request.set_quantizer(quantizer);
    grpc::ClientContext context;
    return stub_->GetHistogram(&context, request, histogram);
  }

  grpc::Status ComputeAmax(v1::ComputeAmaxRequest request, v1::AmaxTableResponse* table = nullptr) {
    grpc::ClientContext context;
    v1::AmaxTableResponse ignored;
    return stub_->ComputeAmax(&context, request, table != nullptr ? table : &ignored);
  }

  grpc::Status ComputeAmax(const std::string& model, const std::string& method,
                           v1::AmaxTableResponse* table = nullptr) {
    v1::ComputeAmaxRequest request;
    request.set_model(model);
    request.set_method(method);
    return ComputeAmax(request, table);
  }

  grpc::Status GetAmaxTable(const std::string& model, v1::AmaxTableResponse* response) {
    v1::GetAmaxTableRequest request;
    request.set_model(model);
    grpc::ClientContext context;
    return stub_->GetAmaxTable(&context, request, response);
  }

  grpc::Status UploadOnnx(const std::string& model, const std::string& bytes, size_t chunk,
                          v1::UploadOnnxResponse* response,
                          const std::map<std::string, std::string>& tensor_map = {}) {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientWriter<v1::UploadOnnxRequest>> writer =
        stub_->UploadOnnx(&context, response);
    size_t offset = 0;
    do {
      v1::UploadOnnxRequest request;
      if (offset == 0) {
        request.set_model(model);
        for (const auto& [quantizer, tensor] : tensor_map) SetTensor(&request, quantizer, tensor);
      }
      request.set_data(bytes.substr(offset, chunk));
      offset += chunk;
      if (!writer->Write(request)) break;
    } while (offset < bytes.size());
    writer->WritesDone();
    return writer->Finish();
  }

  // One ExportOnnx stream: `request` first, then `onnx` (if any) in `chunk`-byte messages.
  grpc::Status ExportOnnx(const v1::ExportOnnxRequest& request, std::string* bytes,
                          std::vector<std::string>* warnings, const std::string& onnx = "",
                          size_t chunk = 1 << 20) {
    std::vector<v1::ExportOnnxRequest> messages = {request};
    for (size_t offset = 0; offset < onnx.size(); offset += chunk) {
      messages.emplace_back().set_data(onnx.substr(offset, chunk));
    }
    return ExportOnnxMessages(messages, bytes, warnings);
  }

  grpc::Status ExportOnnxMessages(const std::vector<v1::ExportOnnxRequest>& messages,
                                  std::string* bytes, std::vector<std::string>* warnings) {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::ExportOnnxRequest, v1::ExportOnnxResponse>>
        reader = stub_->ExportOnnx(&context);
    for (const v1::ExportOnnxRequest& message : messages) {
      if (!reader->Write(message)) break;  // the server ended the stream
    }
    reader->WritesDone();
    v1::ExportOnnxResponse message;
    bool first = true;
    while (reader->Read(&message)) {
      bytes->append(message.data());
      if (first) warnings->assign(message.warnings().begin(), message.warnings().end());
      EXPECT_TRUE(first || message.warnings().empty()) << "warnings only in the first message";
      first = false;
    }
    return reader->Finish();
  }

  // Everything observable about a model: its info and every histogram it has.
  std::string StateOf(const std::string& model) {
    const v1::ModelInfo info = GetModel(model);
    // Deterministic: the order of a map's entries (onnx_bindings) is not, otherwise.
    std::string state;
    {
      google::protobuf::io::StringOutputStream stream(&state);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);
      EXPECT_TRUE(info.SerializeToCodedStream(&coded));
    }
    for (const v1::QuantizerStats& quantizer : info.quantizers()) {
      v1::Histogram histogram;
      if (GetHistogram(model, quantizer.spec().name(), &histogram).ok()) {
        state += histogram.SerializeAsString();
      }
    }
    v1::AmaxTableResponse table;
    if (GetAmaxTable(model, &table).ok()) state += table.SerializeAsString();
    return state;
  }

  std::unique_ptr<QcalServer> server_;
  std::unique_ptr<v1::Calibration::Stub> stub_;
};

// Asserts the code and a piece of the message of a refused call.
#define EXPECT_REFUSED(status, code_, text)                                                \
  do {                                                                                     \
    const grpc::Status refused_ = (status);                                                \
    EXPECT_EQ(refused_.error_code(), grpc::StatusCode::code_) << refused_.error_message(); \
    EXPECT_THAT(refused_.error_message(), HasSubstr(text));                                \
  } while (false)

TEST_F(CalibrationServiceTest, ModelLifecycle) {
  v1::CreateModelRequest request;
  v1::QuantizerSpec* declared = request.add_quantizers();
  declared->set_name("fc._input_quantizer");
  declared->set_num_bits(6);
  request.mutable_default_weight()->set_num_bits(4);
  request.mutable_default_weight()->set_axis(0);
  ASSERT_TRUE(CreateModel("b", request).ok());
  ASSERT_TRUE(CreateModel("a").ok());
  EXPECT_REFUSED(CreateModel("a"), ALREADY_EXISTS, "model 'a' already exists");
  EXPECT_REFUSED(CreateModel(""), INVALID_ARGUMENT, "model name is empty");

  const v1::ModelInfo b = GetModel("b");
  EXPECT_EQ(b.name(), "b");
  ASSERT_EQ(b.quantizers_size(), 1);
  EXPECT_EQ(b.quantizers(0).spec().name(), "fc._input_quantizer");
  EXPECT_EQ(b.quantizers(0).spec().num_bits(), 6);
  EXPECT_EQ(b.quantizers(0).spec().calibrator(), v1::CALIBRATOR_HISTOGRAM);
  EXPECT_EQ(b.quantizers(0).spec().num_bins(), 2048);
  EXPECT_EQ(b.default_weight().num_bits(), 4);
  EXPECT_EQ(b.default_weight().calibrator(), v1::CALIBRATOR_MAX);
  EXPECT_EQ(b.default_input().calibrator(), v1::CALIBRATOR_HISTOGRAM);
  EXPECT_FALSE(b.default_input().has_axis());
  EXPECT_FALSE(b.has_onnx());

  {
    grpc::ClientContext context;
    v1::ListModelsResponse list;
    ASSERT_TRUE(stub_->ListModels(&context, {}, &list).ok());
    ASSERT_EQ(list.models_size(), 2);
    EXPECT_EQ(list.models(0).name(), "a");
    EXPECT_EQ(list.models(1).name(), "b");
  }

  // Reset drops data, the table and Record-created quantizers; keeps the declared one.
  ASSERT_TRUE(Record(Concat({FloatBatch("b", "fc._input_quantizer", {2}, {1, 2}),
                             FloatBatch("b", "fc._weight_quantizer", {2, 1}, {1, 2})}))
                  .status.ok());
  ASSERT_TRUE(ComputeAmax("b", "max").ok());
  EXPECT_EQ(GetModel("b").amax_method(), "max");
  {
    grpc::ClientContext context;
    v1::ResetModelRequest reset;
    reset.set_model("b");
    v1::ModelInfo info;
    ASSERT_TRUE(stub_->ResetModel(&context, reset, &info).ok());
    ASSERT_EQ(info.quantizers_size(), 1);
    EXPECT_EQ(info.quantizers(0).spec().num_bits(), 6);
    EXPECT_EQ(info.quantizers(0).batches(), 0);
    EXPECT_EQ(info.amax_method(), "");
  }

  {
    grpc::ClientContext context;
    v1::DeleteModelRequest del;
    del.set_model("a");
    v1::DeleteModelResponse response;
    ASSERT_TRUE(stub_->DeleteModel(&context, del, &response).ok());
  }
  grpc::Status status;
  GetModel("a", &status);
  EXPECT_REFUSED(status, NOT_FOUND, "unknown model 'a'");
}

// A client from before layouts sends no histogram_layout: its models get the server's default,
// the mergeable layout; one that asks for the reference layout keeps it across ResetModel.
TEST_F(CalibrationServiceTest, AnOldClientsModelGetsTheMergeableLayout) {
  v1::ModelInfo info;
  {
    grpc::ClientContext context;
    v1::CreateModelRequest old;
    old.set_model("old");
    ASSERT_TRUE(stub_->CreateModel(&context, old, &info).ok());
  }
  EXPECT_EQ(info.histogram_layout(), v1::HISTOGRAM_LAYOUT_MERGEABLE);
  EXPECT_EQ(GetModel("old").histogram_layout(), v1::HISTOGRAM_LAYOUT_MERGEABLE);
  v1::CreateModelRequest reference;
  reference.set_histogram_layout(v1::HISTOGRAM_LAYOUT_REFERENCE);
  ASSERT_TRUE(CreateModel("ref", reference).ok());
  EXPECT_EQ(GetModel("ref").histogram_layout(), v1::HISTOGRAM_LAYOUT_REFERENCE);
  grpc::ClientContext context;
  v1::ResetModelRequest reset;
  reset.set_model("ref");
  ASSERT_TRUE(stub_->ResetModel(&context, reset, &info).ok());
  EXPECT_EQ(info.histogram_layout(), v1::HISTOGRAM_LAYOUT_REFERENCE);
}

// FP8 on the wire: a CreateModelRequest from before formats (no field 8) gets integer
// quantizers; an FP8 default reaches the quantizers Record creates, GetModel, and both forms of
// the amax table; the TensorRT cache leaves it out with a warning (issue 5's rule: INT8 only).
// Format values outside the enum and FP8 with other num_bits or unsigned are refused.
TEST_F(CalibrationServiceTest, Fp8FormatOnTheWireAndOldClientsGetIntegers) {
  v1::CreateModelRequest old;
  old.mutable_default_input()->set_num_bits(8);
  ASSERT_TRUE(CreateModel("old", old).ok());
  EXPECT_EQ(GetModel("old").default_input().format(), v1::QUANT_FORMAT_INT);

  v1::CreateModelRequest fp8;
  fp8.mutable_default_input()->set_format(v1::QUANT_FORMAT_FP8_E4M3);  // num_bits unset: 8
  v1::QuantizerSpec* declared = fp8.add_quantizers();
  declared->set_name("b._input_quantizer");
  declared->set_calibrator(v1::CALIBRATOR_MAX);
  declared->set_format(v1::QUANT_FORMAT_FP8_E4M3);
  ASSERT_TRUE(CreateModel("f", fp8).ok());
  ASSERT_TRUE(Record(Concat({FloatBatch("f", "a._input_quantizer", {3}, {0.5f, -2.54f, 1.0f}),
                             FloatBatch("f", "b._input_quantizer", {2}, {4.0f, -1.0f}),
                             FloatBatch("f", "c._weight_quantizer", {2, 1}, {1.0f, 2.0f})}))
                  .status.ok());
  const v1::ModelInfo info = GetModel("f");
  EXPECT_EQ(info.default_input().format(), v1::QUANT_FORMAT_FP8_E4M3);
  EXPECT_EQ(info.default_input().num_bits(), 8);
  EXPECT_EQ(info.default_weight().format(), v1::QUANT_FORMAT_INT);
  std::map<std::string, v1::QuantFormat> formats;
  for (const v1::QuantizerStats& q : info.quantizers())
    formats[q.spec().name()] = q.spec().format();
  EXPECT_EQ(formats, (std::map<std::string, v1::QuantFormat>{
                         {"a._input_quantizer", v1::QUANT_FORMAT_FP8_E4M3},
                         {"b._input_quantizer", v1::QUANT_FORMAT_FP8_E4M3},
                         {"c._weight_quantizer", v1::QUANT_FORMAT_INT}}));

  v1::AmaxTableResponse table;
  ASSERT_TRUE(ComputeAmax("f", "max", &table).ok());
  std::map<std::string, v1::QuantFormat> table_formats;
  for (const v1::QuantizerAmax& q : table.table().quantizers())
    table_formats[q.name()] = q.format();
  EXPECT_EQ(table_formats, formats);
  EXPECT_THAT(table.json(), HasSubstr("\"format\": \"fp8_e4m3\""));
  EXPECT_EQ(table.trt_cache(), "TRT-8601-EntropyCalibration2\n");
  EXPECT_THAT(table.warnings(),
              testing::Contains(HasSubstr("2 FP8 (fp8_e4m3) quantizers, quantizer "
                                          "'a._input_quantizer' tensor 'a._input_quantizer'")));

  v1::CreateModelRequest unknown;
  unknown.mutable_default_input()->set_format(static_cast<v1::QuantFormat>(5));
  EXPECT_REFUSED(CreateModel("u", unknown), INVALID_ARGUMENT, "unknown format 5");
  v1::CreateModelRequest four_bits;
  v1::QuantizerSpec* q4 = four_bits.add_quantizers();
  q4->set_name("x._input_quantizer");
  q4->set_num_bits(4);
  q4->set_format(v1::QUANT_FORMAT_FP8_E4M3);
  EXPECT_REFUSED(CreateModel("u", four_bits), INVALID_ARGUMENT,
                 "quantizer 'x._input_quantizer': num_bits 4 does not fit format fp8_e4m3");
  v1::CreateModelRequest unsigned_fp8;
  unsigned_fp8.mutable_default_weight()->set_format(v1::QUANT_FORMAT_FP8_E4M3);
  unsigned_fp8.mutable_default_weight()->set_is_unsigned(true);
  EXPECT_REFUSED(CreateModel("u", unsigned_fp8), INVALID_ARGUMENT,
                 "default_weight: default descriptor: format fp8_e4m3 is signed");
  grpc::Status status;
  GetModel("u", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// The same bytes chunked by 1 byte, 7 bytes and whole give bit-identical state, equal to the
// kernel's histogram fed directly.
TEST_F(CalibrationServiceTest, ChunkingNeverChangesTheResult) {
  std::mt19937 random(7);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> first(600), second(400);
  for (float& value : first) value = normal(random);
  for (float& value : second) value = 3.0f * normal(random);

  // The server's default layout (mergeable) for a CreateModel that leaves it unset.
  kernels::Histogram::Options options;
  options.layout = kernels::HistogramLayout::kMergeable;
  kernels::Histogram direct{options};
  ASSERT_TRUE(direct.Collect(first).ok());
  ASSERT_TRUE(direct.Collect(second).ok());

  std::vector<std::string> states;
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{1} << 20}) {
    const std::string model = "m" + std::to_string(chunk);
    ASSERT_TRUE(CreateModel(model).ok());
    const RecordResult result =
        Record(Concat({FloatBatch(model, "x._input_quantizer", {20, 30}, first, chunk),
                       FloatBatch(model, "x._input_quantizer", {400}, second, chunk)}));
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.response.batches(), 2);
    EXPECT_EQ(result.response.elements(), 1000);
    EXPECT_EQ(result.response.bytes(), 4000);
    EXPECT_EQ(result.response.nonfinite(), 0);

    v1::Histogram histogram;
    ASSERT_TRUE(GetHistogram(model, "x._input_quantizer", &histogram).ok());
    EXPECT_THAT(histogram.counts(), ::testing::ElementsAreArray(direct.Counts()));
    EXPECT_THAT(histogram.edges(), ::testing::ElementsAreArray(direct.Edges()));
    EXPECT_EQ(histogram.abs_max(), direct.abs_max());
    EXPECT_EQ(histogram.total(), 1000u);
    EXPECT_EQ(histogram.model(), model);

    v1::ModelInfo info = GetModel(model);
    info.clear_name();
    histogram.clear_model();
    states.push_back(info.SerializeAsString() + histogram.SerializeAsString());
  }
  EXPECT_EQ(states[0], states[1]);
  EXPECT_EQ(states[0], states[2]);
}

TEST_F(CalibrationServiceTest, OtherDtypesDecodeToTheSameValues) {
  ASSERT_TRUE(CreateModel("m").ok());
  // float16 1.0, 2.0, -0.5 and bfloat16 -3.0, 0.25 (little-endian bit patterns).
  const std::string half("\x00\x3c\x00\x40\x00\xb8", 6);
  const std::string bfloat("\x40\xc0\x80\x3e", 4);
  std::string float64(16, '\0');
  const double doubles[2] = {0.125, -1e300};  // -1e300 is beyond float32: counted non-finite
  std::memcpy(float64.data(), doubles, 16);
  const RecordResult result =
      Record(Concat({Batch("m", "a._input_quantizer", v1::DTYPE_FLOAT16, {3}, half, 1),
                     Batch("m", "b._input_quantizer", v1::DTYPE_BFLOAT16, {2}, bfloat, 3),
                     Batch("m", "c._input_quantizer", v1::DTYPE_FLOAT64, {2}, float64, 16)}));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.response.bytes(), 6 + 4 + 16);
  EXPECT_EQ(result.response.nonfinite(), 1);
  v1::AmaxTableResponse computed;
  ASSERT_TRUE(ComputeAmax("m", "max", &computed).ok());
  const v1::AmaxTable& table = computed.table();
  ASSERT_EQ(table.quantizers_size(), 3);
  EXPECT_EQ(table.quantizers(0).amax(0), 2.0f);
  EXPECT_EQ(table.quantizers(1).amax(0), 3.0f);
  EXPECT_EQ(table.quantizers(2).amax(0), 0.125f);
  EXPECT_EQ(table.quantizers(2).nonfinite(), 1);
}

TEST_F(CalibrationServiceTest, NonFiniteValuesAreCountedNotRefused) {
  ASSERT_TRUE(CreateModel("m").ok());
  const float inf = std::numeric_limits<float>::infinity();
  const RecordResult result = Record(
      FloatBatch("m", "x._input_quantizer", {6}, {1.5f, std::nanf(""), inf, -inf, -2.5f, 0.5f}, 5));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.response.elements(), 6);
  EXPECT_EQ(result.response.nonfinite(), 3);
  for (const char* method : {"max", "entropy", "mse", "percentile"}) {
    v1::AmaxTableResponse table;
    v1::ComputeAmaxRequest request;
    request.set_model("m");
    request.set_method(method);
    if (std::string(method) == "entropy" || std::string(method) == "mse") request.set_start_bin(1);
    ASSERT_TRUE(ComputeAmax(request, &table).ok()) << method;
    const float amax = table.table().quantizers(0).amax(0);
    // Within the histogram's range: the mergeable layout's last edge, 2561 * 2^-10, lies just
    // above the max 2.5, and mse may choose a bin center there.
    EXPECT_TRUE(std::isfinite(amax) && amax > 0.0f && amax <= 2561.0f / 1024)
        << method << " " << amax;
    EXPECT_EQ(table.table().quantizers(0).nonfinite(), 3);
  }
  v1::Histogram histogram;
  ASSERT_TRUE(GetHistogram("m", "x._input_quantizer", &histogram).ok());
  EXPECT_EQ(histogram.nonfinite(), 3);
  EXPECT_EQ(histogram.total(), 3u);
  EXPECT_EQ(histogram.abs_max(), 2.5f);
}

TEST_F(CalibrationServiceTest, RecordBadInputIsRefusedAndChangesNothing) {
  v1::CreateModelRequest create;
  v1::QuantizerSpec* declared = create.add_quantizers();
  declared->set_name("w._weight_quantizer");
  declared->set_axis(3);
  ASSERT_TRUE(CreateModel("m", create).ok());
  ASSERT_TRUE(Record(FloatBatch("m", "x._input_quantizer", {4}, {1, -2, 3, 0.5})).status.ok());
  const std::string before = StateOf("m");

  const std::string bytes16 = FloatBytes({1, 2, 3, 4});
  EXPECT_REFUSED(Record(FloatBatch("nope", "x._input_quantizer", {4}, {1, 2, 3, 4})).status,
                 NOT_FOUND, "unknown model 'nope'");
  // Byte count != shape x dtype: too few (cut off), too many.
  EXPECT_REFUSED(
      Record(Batch("m", "x._input_quantizer", v1::DTYPE_FLOAT32, {4}, bytes16.substr(0, 12), 5))
          .status,
      INVALID_ARGUMENT, "got 12 of 16 bytes");
  EXPECT_REFUSED(
      Record(Batch("m", "x._input_quantizer", v1::DTYPE_FLOAT32, {4}, bytes16 + "abcd", 7)).status,
      INVALID_ARGUMENT, "declare 16 bytes");
  EXPECT_REFUSED(
      Record(Batch("m", "x._input_quantizer", v1::DTYPE_FLOAT32, {3}, bytes16, 16)).status,
      INVALID_ARGUMENT, "declare 12 bytes");
  // Unknown dtype.
  EXPECT_REFUSED(
      Record(Batch("m", "x._input_quantizer", v1::DTYPE_UNSPECIFIED, {4}, bytes16, 16)).status,
      INVALID_ARGUMENT, "unknown dtype 0");
  EXPECT_REFUSED(
      Record(Batch("m", "x._input_quantizer", static_cast<v1::DType>(9), {4}, bytes16, 16)).status,
      INVALID_ARGUMENT, "unknown dtype 9");
  // Empty tensor.
  EXPECT_REFUSED(Record(Batch("m", "x._input_quantizer", v1::DTYPE_FLOAT32, {4, 0}, "", 1)).status,
                 INVALID_ARGUMENT, "dimension 1 is 0");
  // Axis out of range: the default weight descriptor (axis 0) on a scalar; a declared axis 3 on
  // a rank-2 batch. Neither creates or touches a quantizer.
  EXPECT_REFUSED(Record(FloatBatch("m", "v._weight_quantizer", {}, {1})).status, INVALID_ARGUMENT,
                 "axis 0 is out of range for a batch of rank 0");
  EXPECT_REFUSED(Record(FloatBatch("m", "w._weight_quantizer", {2, 2}, {1, 2, 3, 4})).status,
                 INVALID_ARGUMENT, "axis 3 is out of range for a batch of rank 2");
  // Chunking errors: a new header mid-batch, data without a header, a second model.
  EXPECT_REFUSED(Record(Concat({Batch("m", "x._input_quantizer", v1::DTYPE_FLOAT32, {4},
                                      bytes16.substr(0, 8), 8),
                                FloatBatch("m", "x._input_quantizer", {4}, {1, 2, 3, 4})}))
                     .status,
                 INVALID_ARGUMENT, "a new batch header arrived before");
  {
    v1::RecordRequest data_only;
    data_only.set_model("m");
    data_only.set_data(bytes16);
    EXPECT_REFUSED(Record({data_only}).status, INVALID_ARGUMENT, "without a batch header");
  }
  {
    std::vector<v1::RecordRequest> messages =
        Batch("m", "x._input_quantizer", v1::DTYPE_FLOAT32, {4}, bytes16, 8);
    messages[1].set_model("other");
    EXPECT_REFUSED(Record(messages).status, INVALID_ARGUMENT, "got a message for model 'other'");
  }
  {
    std::vector<v1::RecordRequest> messages =
        Batch("m", "x._input_quantizer", v1::DTYPE_FLOAT32, {4}, bytes16, 8);
    messages[0].clear_quantizer();
    EXPECT_REFUSED(Record(messages).status, INVALID_ARGUMENT, "needs a quantizer name");
  }
  EXPECT_EQ(StateOf("m"), before);

  // Batches completed before the error stay applied; the refused one changes nothing.
  const RecordResult partial = Record(
      Concat({FloatBatch("m", "x._input_quantizer", {2}, {7, 8}, 3),
              Batch("m", "x._input_quantizer", v1::DTYPE_FLOAT32, {4}, bytes16.substr(0, 12), 5)}));
  EXPECT_REFUSED(partial.status, INVALID_ARGUMENT, "got 12 of 16 bytes");
  const v1::ModelInfo after = GetModel("m");
  ASSERT_EQ(after.quantizers_size(), 2);
  EXPECT_EQ(after.quantizers(1).spec().name(), "x._input_quantizer");
  EXPECT_EQ(after.quantizers(1).batches(), 2);
  EXPECT_EQ(after.quantizers(1).elements(), 6);
}

// The stream looks the model up for each batch: once the model is deleted, it fails.
TEST_F(CalibrationServiceTest, StreamIntoADeletedModelFails) {
  ASSERT_TRUE(CreateModel("gone").ok());
  grpc::ClientContext context;
  v1::RecordResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::RecordRequest>> writer =
      stub_->Record(&context, &response);
  for (const v1::RecordRequest& message : FloatBatch("gone", "x._input_quantizer", {2}, {1, 2})) {
    ASSERT_TRUE(writer->Write(message));
  }
  {
    grpc::ClientContext delete_context;
    v1::DeleteModelRequest del;
    del.set_model("gone");
    v1::DeleteModelResponse deleted;
    ASSERT_TRUE(stub_->DeleteModel(&delete_context, del, &deleted).ok());
  }
  for (const v1::RecordRequest& message : FloatBatch("", "x._input_quantizer", {2}, {3, 4})) {
    if (!writer->Write(message)) break;
  }
  writer->WritesDone();
  EXPECT_REFUSED(writer->Finish(), NOT_FOUND, "unknown model 'gone'");
}

TEST_F(CalibrationServiceTest, OversizeBatchIsResourceExhausted) {
  server_.reset();
  Start({.listen = "127.0.0.1:0", .max_batch_bytes = 1024});
  ASSERT_TRUE(CreateModel("m").ok());
  ASSERT_TRUE(Record(FloatBatch("m", "x._input_quantizer", {256}, std::vector<float>(256, 1.0f)))
                  .status.ok());
  const std::string before = StateOf("m");
  EXPECT_REFUSED(
      Record(FloatBatch("m", "x._input_quantizer", {257}, std::vector<float>(257, 9.0f), 64))
          .status,
      RESOURCE_EXHAUSTED, "1028 bytes, more than the server's --max-batch-bytes 1024");
  EXPECT_EQ(StateOf("m"), before);
  // The ONNX upload obeys the same limit.
  v1::UploadOnnxResponse response;
  EXPECT_REFUSED(UploadOnnx("m", std::string(2000, 'x'), 500, &response), RESOURCE_EXHAUSTED,
                 "larger than the server's limit of 1024 bytes");
  EXPECT_EQ(StateOf("m"), before);
}

TEST_F(CalibrationServiceTest, ComputeAmaxBadInputIsRefusedAndChangesNothing) {
  v1::CreateModelRequest create;
  // Mergeable layout (the default): between 33 and 64 bins, fewer than the default start_bin.
  create.mutable_default_input()->set_num_bins(32);
  ASSERT_TRUE(CreateModel("small", create).ok());
  ASSERT_TRUE(CreateModel("m").ok());
  EXPECT_REFUSED(ComputeAmax("m", "max"), FAILED_PRECONDITION, "no recorded data");
  EXPECT_REFUSED(ComputeAmax("nope", "max"), NOT_FOUND, "unknown model 'nope'");

  std::vector<float> values(500);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(static_cast<float>(i));
  ASSERT_TRUE(Record(FloatBatch("m", "x._input_quantizer", {500}, values)).status.ok());
  ASSERT_TRUE(Record(FloatBatch("small", "x._input_quantizer", {500}, values)).status.ok());
  ASSERT_TRUE(ComputeAmax("m", "mse").ok());
  const std::string before = StateOf("m");
  const std::string small_before = StateOf("small");

  EXPECT_REFUSED(ComputeAmax("m", "kl"), INVALID_ARGUMENT, "unknown method 'kl'");
  EXPECT_REFUSED(ComputeAmax("m", ""), INVALID_ARGUMENT, "unknown method ''");
  for (double percentile : {-1.0, 100.01, 1000.0}) {
    v1::ComputeAmaxRequest request;
    request.set_model("m");
    request.set_method("percentile");
    request.set_percentile(percentile);
    EXPECT_REFUSED(ComputeAmax(request), INVALID_ARGUMENT, "is outside (0, 100]");
  }
  {
    v1::ComputeAmaxRequest request;
    request.set_model("m");
    request.set_method("entropy");
    // max |sin| just below 1 with 2048 bins: width 2^-12, floor(max * 4096) + 1 = 4096 bins.
    ASSERT_EQ(GetModel("m").quantizers(0).bins(), 4096);
    request.set_start_bin(4097);
    EXPECT_REFUSED(ComputeAmax(request), INVALID_ARGUMENT,
                   "start_bin 4097 is beyond the histogram's 4096 bins");
    request.set_method("mse");
    request.set_start_bin(4096);
    EXPECT_REFUSED(ComputeAmax(request), INVALID_ARGUMENT,
                   "start_bin 4096 is beyond the histogram's 4096 bins");
  }
  {
    v1::ComputeAmaxRequest request;
    request.set_model("m");
    request.set_method("max");
    Override(&request, "nope._input_quantizer")->set_method("max");
    EXPECT_REFUSED(ComputeAmax(request), NOT_FOUND, "'nope._input_quantizer'");
  }
  // A 64-bin histogram (max just below 1 at width 2^-6) asked for entropy with the default
  // start_bin 128.
  EXPECT_REFUSED(ComputeAmax("small", "entropy"), INVALID_ARGUMENT,
                 "start_bin 128 is beyond the histogram's 64 bins");
  EXPECT_EQ(StateOf("m"), before);
  EXPECT_EQ(StateOf("small"), small_before);
  EXPECT_EQ(GetModel("m").amax_method(), "mse");

  // A percentile of 0 means the default 99.99.
  v1::ComputeAmaxRequest request;
  request.set_model("m");
  request.set_method("percentile");
  v1::AmaxTableResponse zero, explicit_default;
  ASSERT_TRUE(ComputeAmax(request, &zero).ok());
  request.set_percentile(99.99);
  ASSERT_TRUE(ComputeAmax(request, &explicit_default).ok());
  EXPECT_EQ(zero.table().quantizers(0).amax(0), explicit_default.table().quantizers(0).amax(0));
}

TEST_F(CalibrationServiceTest, HistogramAndTableErrors) {
  ASSERT_TRUE(CreateModel("m").ok());
  ASSERT_TRUE(Record(FloatBatch("m", "c._weight_quantizer", {2, 2}, {1, 2, 3, 4})).status.ok());
  v1::Histogram histogram;
  EXPECT_REFUSED(GetHistogram("m", "c._input_quantizer", &histogram), NOT_FOUND,
                 "model 'm' has no quantizer 'c._input_quantizer'");
  EXPECT_REFUSED(GetHistogram("m", "c._weight_quantizer", &histogram), FAILED_PRECONDITION,
                 "max calibrator");
  v1::AmaxTableResponse table;
  EXPECT_REFUSED(GetAmaxTable("m", &table), FAILED_PRECONDITION, "call ComputeAmax first");
  v1::ExportOnnxRequest request;
  request.set_model("m");
  std::string bytes;
  std::vector<std::string> warnings;
  EXPECT_REFUSED(ExportOnnx(request, &bytes, &warnings), FAILED_PRECONDITION,
                 "no ONNX model was uploaded");
}

TEST_F(CalibrationServiceTest, BadOnnxIsRefusedAndChangesNothing) {
  ASSERT_TRUE(CreateModel("m").ok());
  v1::UploadOnnxResponse response;
  EXPECT_REFUSED(UploadOnnx("nope", "x", 1, &response), NOT_FOUND, "unknown model 'nope'");
  EXPECT_REFUSED(UploadOnnx("m", "this is not a ModelProto", 4, &response), INVALID_ARGUMENT,
                 "model 'm', UploadOnnx");
  EXPECT_REFUSED(UploadOnnx("m", ReadFile(TestModelPath("opset11.onnx")), 100, &response),
                 INVALID_ARGUMENT, "11");
  EXPECT_FALSE(GetModel("m").has_onnx());

  // A valid upload, then bad ones: the valid model stays.
  const std::string good = ReadFile(TestModelPath("cnn_bn.onnx"));
  ASSERT_TRUE(UploadOnnx("m", good, 1000, &response).ok());
  ASSERT_TRUE(GetModel("m").has_onnx());
  const std::string before = StateOf("m");
  EXPECT_REFUSED(UploadOnnx("m", good.substr(0, good.size() / 2), 1000, &response),
                 INVALID_ARGUMENT, "UploadOnnx");
  EXPECT_REFUSED(UploadOnnx("m", good, 1000, &response, {{"conv1._input_quantizer", "nope"}}),
                 INVALID_ARGUMENT, "nope");
  EXPECT_EQ(StateOf("m"), before);

  // With an ONNX model but no table.
  v1::ExportOnnxRequest request;
  request.set_model("m");
  std::string bytes;
  std::vector<std::string> warnings;
  EXPECT_REFUSED(ExportOnnx(request, &bytes, &warnings), FAILED_PRECONDITION, "no amax table");
  request.mutable_compute()->set_model("other");
  request.mutable_compute()->set_method("max");
  EXPECT_REFUSED(ExportOnnx(request, &bytes, &warnings), INVALID_ARGUMENT,
                 "compute.model names model 'other'");
  request.clear_compute();
  request.set_target("tflite");
  EXPECT_REFUSED(ExportOnnx(request, &bytes, &warnings), INVALID_ARGUMENT,
                 "unknown target 'tflite'");
}

// Input models stop at opset 17 (Debian's ONNX 1.12 checks no later one): 18 is refused by
// UploadOnnx and by an ExportOnnx that sends its own model, saying so; 17 is taken.
TEST_F(CalibrationServiceTest, OnnxAboveOpset17IsRefusedAtUploadAndExport) {
  ASSERT_TRUE(CreateModel("m").ok());
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(ReadFile(TestModelPath("qdq_pq_opset17.onnx"))));
  ASSERT_EQ(model.opset_import(0).version(), 17);
  const std::string opset17 = model.SerializeAsString();
  model.mutable_opset_import(0)->set_version(18);
  const std::string opset18 = model.SerializeAsString();
  constexpr char kRefused[] =
      "ONNX model has opset 18; opset 18 is above 17, the highest this server's ONNX 1.12 can "
      "check; export at opset 13..17";
  v1::UploadOnnxResponse response;
  EXPECT_REFUSED(UploadOnnx("m", opset18, 1000, &response), INVALID_ARGUMENT,
                 absl::StrCat("model 'm', UploadOnnx: ", kRefused));
  EXPECT_FALSE(GetModel("m").has_onnx());
  v1::ExportOnnxRequest request;
  request.set_model("m");
  std::string bytes;
  std::vector<std::string> warnings;
  EXPECT_REFUSED(ExportOnnx(request, &bytes, &warnings, opset18), INVALID_ARGUMENT,
                 absl::StrCat("model 'm', ExportOnnx: ", kRefused));
  EXPECT_FALSE(GetModel("m").has_onnx());

  ASSERT_TRUE(UploadOnnx("m", opset17, 1000, &response).ok());
  EXPECT_EQ(response.opset(), 17);
}

// UploadOnnx, Record, GetAmaxTable keyed by ONNX tensors, ExportOnnx with `compute`.
TEST_F(CalibrationServiceTest, OnnxUploadAndExport) {
  ASSERT_TRUE(CreateModel("cnn").ok());
  ASSERT_TRUE(Record(Concat({FloatBatch("cnn", "conv1._input_quantizer", {1, 1, 2, 2},
                                        {0.5f, -1.0f, 2.0f, 0.25f}),
                             FloatBatch("cnn", "conv2._input_quantizer", {2}, {3.0f, -1.0f}),
                             FloatBatch("cnn", "fc1._input_quantizer", {2}, {0.0f, 5.0f})}))
                  .status.ok());
  v1::UploadOnnxResponse uploaded;
  const std::string onnx_bytes = ReadFile(TestModelPath("cnn_bn.onnx"));
  ASSERT_TRUE(UploadOnnx("cnn", onnx_bytes, 333, &uploaded).ok());
  EXPECT_EQ(uploaded.bytes(), static_cast<int64_t>(onnx_bytes.size()));
  EXPECT_EQ(uploaded.opset(), 13);
  EXPECT_EQ(uploaded.bindings().at("conv1._input_quantizer"), "input");
  EXPECT_EQ(uploaded.bindings().at("conv2._input_quantizer"), "/pool/MaxPool_output_0");
  EXPECT_EQ(uploaded.bindings().at("fc1._input_quantizer"), "/Flatten_output_0");

  v1::ExportOnnxRequest request;
  request.set_model("cnn");
  request.mutable_compute()->set_method("max");
  std::string bytes;
  std::vector<std::string> warnings;
  const grpc::Status exported = ExportOnnx(request, &bytes, &warnings);
  ASSERT_TRUE(exported.ok()) << exported.error_message();
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(bytes));
  int quantize = 0, dequantize = 0;
  for (const onnx::NodeProto& node : model.graph().node()) {
    quantize += node.op_type() == "QuantizeLinear";
    dequantize += node.op_type() == "DequantizeLinear";
  }
  EXPECT_GE(quantize, 3);
  EXPECT_EQ(quantize, dequantize);
  // `compute` stored its table.
  EXPECT_EQ(GetModel("cnn").amax_method(), "max");

  v1::AmaxTableResponse table;
  ASSERT_TRUE(GetAmaxTable("cnn", &table).ok());
  const auto hex = [](float value) {
    uint32_t bits = 0;
    std::memcpy(&bits, &value, 4);
    char text[16];
    std::snprintf(text, sizeof(text), "%08x", bits);
    return std::string(text);
  };
  EXPECT_EQ(table.trt_cache(),
            "TRT-8601-EntropyCalibration2\n"
            "/Flatten_output_0: " +
                hex(5.0f / 127.0f) + "\n" + "/pool/MaxPool_output_0: " + hex(3.0f / 127.0f) + "\n" +
                "input: " + hex(2.0f / 127.0f) + "\n");
  EXPECT_THAT(table.json(), HasSubstr("\"model\": \"cnn\""));
  EXPECT_EQ(table.table().quantizers_size(), 3);
}

// ExportOnnxRequest.explain fills the first response message's explain entries; without it they
// stay empty (old clients see no change); explain in a later message is an option out of place.
TEST_F(CalibrationServiceTest, ExportExplainIsOptIn) {
  ASSERT_TRUE(CreateModel("cnn").ok());
  ASSERT_TRUE(
      Record(FloatBatch("cnn", "conv1._input_quantizer", {1, 1, 2, 2}, {0.5f, -1.0f, 2.0f, 0.25f}))
          .status.ok());
  v1::UploadOnnxResponse uploaded;
  ASSERT_TRUE(UploadOnnx("cnn", ReadFile(TestModelPath("cnn_bn.onnx")), 1 << 20, &uploaded).ok());
  const auto run = [&](const std::vector<v1::ExportOnnxRequest>& messages,
                       std::vector<v1::ExportOnnxResponse>* responses) {
    grpc::ClientContext context;
    auto stream = stub_->ExportOnnx(&context);
    for (const v1::ExportOnnxRequest& m : messages) {
      if (!stream->Write(m)) break;
    }
    stream->WritesDone();
    v1::ExportOnnxResponse message;
    while (stream->Read(&message)) responses->push_back(message);
    return stream->Finish();
  };
  v1::ExportOnnxRequest request;
  request.set_model("cnn");
  request.mutable_compute()->set_method("max");
  std::vector<v1::ExportOnnxResponse> plain;
  ASSERT_TRUE(run({request}, &plain).ok());
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(plain[0].explain_size(), 0);

  request.set_explain(true);
  std::vector<v1::ExportOnnxResponse> explained;
  const grpc::Status status = run({request}, &explained);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(explained.empty());
  ASSERT_GT(explained[0].explain_size(), 2);
  const v1::ExplainEntry& first = explained[0].explain(0);
  EXPECT_EQ(first.node(), "/conv1/Conv");
  EXPECT_EQ(first.op_type(), "Conv");
  EXPECT_EQ(first.input(), 0);
  EXPECT_EQ(first.tensor(), "input");
  EXPECT_EQ(first.decision(), v1::EXPLAIN_DECISION_QUANTIZED);
  EXPECT_EQ(first.quantizer(), "conv1._input_quantizer");
  EXPECT_EQ(first.rule(), "weighted-op input");
  EXPECT_EQ(first.reason(), "per-tensor int8, amax 2, scale 0.015748");
  const v1::ExplainEntry& second = explained[0].explain(2);  // /pool/MaxPool input 0
  EXPECT_EQ(second.node(), "/pool/MaxPool");
  EXPECT_EQ(second.decision(), v1::EXPLAIN_DECISION_SKIPPED);
  EXPECT_EQ(second.reason(), "no quantizer recorded (looked for 'pool._input_quantizer')");
  for (size_t i = 1; i < explained.size(); ++i) EXPECT_EQ(explained[i].explain_size(), 0);

  v1::ExportOnnxRequest later;
  later.set_explain(true);
  request.set_explain(false);
  std::vector<v1::ExportOnnxResponse> refused;
  const grpc::Status out_of_place = run({request, later}, &refused);
  EXPECT_EQ(out_of_place.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(
      out_of_place.error_message(),
      HasSubstr("compute, target, tensor_map, explain and fp8_ops belong in the first message"));
}

// exist_ok compares configurations after the defaults are filled in: the wire's 0 and unset
// fields equal the values they stand for. GetModel reports the histogram's bins now, the max
// calibrators' channel counts and the ONNX bindings; ExportOnnx's first message the table used.
TEST_F(CalibrationServiceTest, ExistOkBinsBindingsAndExportMethodOnTheWire) {
  v1::CreateModelRequest bare;
  bare.add_quantizers()->set_name("conv1._weight_quantizer");  // calibrator: the role's (max)
  ASSERT_TRUE(CreateModel("cnn", bare).ok());
  EXPECT_REFUSED(CreateModel("cnn", bare), ALREADY_EXISTS, "model 'cnn' already exists");
  v1::CreateModelRequest explicit_defaults;
  explicit_defaults.set_exist_ok(true);
  explicit_defaults.mutable_default_input()->set_num_bits(8);
  explicit_defaults.mutable_default_input()->set_calibrator(v1::CALIBRATOR_HISTOGRAM);
  explicit_defaults.mutable_default_input()->set_num_bins(2048);
  v1::QuantizerSpec* weight = explicit_defaults.add_quantizers();
  weight->set_name("conv1._weight_quantizer");
  weight->set_calibrator(v1::CALIBRATOR_MAX);
  weight->set_num_bits(8);
  EXPECT_TRUE(CreateModel("cnn", explicit_defaults).ok());
  v1::CreateModelRequest other = explicit_defaults;
  other.mutable_quantizers(0)->set_axis(0);
  EXPECT_REFUSED(CreateModel("cnn", other), FAILED_PRECONDITION,
                 "model 'cnn' exists with quantizer 'conv1._weight_quantizer' per-tensor (no "
                 "axis), not axis 0");

  ASSERT_TRUE(
      Record(Concat({FloatBatch("cnn", "conv1._input_quantizer", {1, 1, 2, 2},
                                {0.5f, -1.0f, 2.0f, 0.25f}),
                     FloatBatch("cnn", "conv1._input_quantizer", {1}, {3.0f}),
                     FloatBatch("cnn", "fc1._weight_quantizer", {3, 2}, {1, 2, 3, 4, 5, 6})}))
          .status.ok());
  v1::ModelInfo info = GetModel("cnn");
  std::map<std::string, v1::QuantizerStats> stats;
  for (const v1::QuantizerStats& q : info.quantizers()) stats[q.spec().name()] = q;
  // Mergeable layout (the default): max 3 over bins of width 2^-10, the finest for which
  // floor(3 * 1024) + 1 = 3073 <= 2 * 2048 bins.
  EXPECT_EQ(stats["conv1._input_quantizer"].spec().num_bins(), 2048);
  EXPECT_EQ(stats["conv1._input_quantizer"].bins(), 3073);
  EXPECT_EQ(stats["conv1._input_quantizer"].amax_size(), 0);
  EXPECT_EQ(stats["fc1._weight_quantizer"].amax_size(), 3);
  EXPECT_EQ(stats["conv1._weight_quantizer"].amax_size(), 0);  // no data yet
  EXPECT_TRUE(info.onnx_bindings().empty());

  v1::UploadOnnxResponse uploaded;
  ASSERT_TRUE(UploadOnnx("cnn", ReadFile(TestModelPath("cnn_bn.onnx")), 1 << 20, &uploaded).ok());
  info = GetModel("cnn");
  EXPECT_EQ(info.onnx_bindings().at("conv1._input_quantizer"), "input");
  EXPECT_EQ(info.onnx_bindings().size(), uploaded.bindings().size());

  ASSERT_TRUE(ComputeAmax("cnn", "percentile").ok());
  for (const std::string method : {"", "mse"}) {
    v1::ExportOnnxRequest request;
    request.set_model("cnn");
    if (!method.empty()) request.mutable_compute()->set_method(method);
    grpc::ClientContext context;
    auto stream = stub_->ExportOnnx(&context);
    ASSERT_TRUE(stream->Write(request));
    stream->WritesDone();
    v1::ExportOnnxResponse message;
    std::vector<std::string> methods;
    while (stream->Read(&message)) methods.push_back(message.amax_method());
    ASSERT_TRUE(stream->Finish().ok());
    ASSERT_FALSE(methods.empty());
    EXPECT_EQ(methods[0], method.empty() ? "percentile" : method);
    for (size_t i = 1; i < methods.size(); ++i) EXPECT_EQ(methods[i], "") << "first message only";
  }
}

// 8 concurrent streams into one model count every element once, and give the same max as one
// stream sending all the data.
TEST_F(CalibrationServiceTest, ConcurrentStreamsLoseNothing) {
  constexpr int kStreams = 8;
  constexpr int kBatches = 20;
  constexpr int kValues = 1000;
  ASSERT_TRUE(CreateModel("many").ok());
  ASSERT_TRUE(CreateModel("one").ok());
  std::vector<std::vector<v1::RecordRequest>> streams(kStreams);
  std::vector<v1::RecordRequest> all;
  for (int s = 0; s < kStreams; ++s) {
    for (int b = 0; b < kBatches; ++b) {
      std::vector<float> values(kValues);
      for (int i = 0; i < kValues; ++i) {
        values[i] = std::cos(static_cast<float>(s * 7919 + b * 104729 + i)) * (1.0f + s);
      }
      auto batch = FloatBatch("many", "x._input_quantizer", {kValues}, values, 1500);
      streams[s].insert(streams[s].end(), batch.begin(), batch.end());
      auto same = FloatBatch("one", "x._input_quantizer", {kValues}, values, 1500);
      all.insert(all.end(), same.begin(), same.end());
    }
  }
  std::vector<RecordResult> results(kStreams);
  std::vector<std::thread> threads;
  for (int s = 0; s < kStreams; ++s) {
    threads.emplace_back([&, s] { results[s] = Record(streams[s]); });
  }
  for (std::thread& thread : threads) thread.join();
  for (const RecordResult& result : results) {
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.response.elements(), kBatches * kValues);
  }
  ASSERT_TRUE(Record(all).status.ok());

  const v1::ModelInfo many = GetModel("many");
  EXPECT_EQ(many.quantizers(0).elements(), int64_t{kStreams} * kBatches * kValues);
  EXPECT_EQ(many.quantizers(0).batches(), kStreams * kBatches);
  v1::Histogram histogram;
  ASSERT_TRUE(GetHistogram("many", "x._input_quantizer", &histogram).ok());
  EXPECT_EQ(histogram.total(), static_cast<uint64_t>(kStreams) * kBatches * kValues);
  v1::AmaxTableResponse many_table, one_table;
  ASSERT_TRUE(ComputeAmax("many", "max", &many_table).ok());
  ASSERT_TRUE(ComputeAmax("one", "max", &one_table).ok());
  EXPECT_EQ(many_table.table().quantizers(0).amax(0), one_table.table().quantizers(0).amax(0));
  EXPECT_EQ(many_table.table().quantizers(0).elements(),
            one_table.table().quantizers(0).elements());
}

// Eventually(done): polls for up to 30 s, a bound for a slow machine, not a timing assertion.
template <typename Done>
bool Eventually(Done done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// A Record stream driven message by message, to hold a batch half-sent.
struct OpenStream {
  // `deadline` (none when absent) is the call's: set before the call starts.
  explicit OpenStream(v1::Calibration::Stub& stub,
                      std::optional<std::chrono::system_clock::time_point> deadline = {}) {
    if (deadline.has_value()) context.set_deadline(*deadline);
    writer = stub.Record(&context, &response);
  }
  grpc::ClientContext context;
  v1::RecordResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::RecordRequest>> writer;
};

// --max-inflight-bytes of two batches: the streams beyond them wait (unread) and then complete;
// none is refused, and every batch counts once.
TEST_F(CalibrationServiceTest, StreamsBeyondTheInflightBytesWaitAndComplete) {
  constexpr int64_t kValues = 64 << 10;  // 256 KiB batches, in 64 KiB chunks
  constexpr int64_t kBatchBytes = kValues * 4;
  Start({.listen = "127.0.0.1:0",
         .max_batch_bytes = kBatchBytes,
         .max_inflight_bytes = 2 * kBatchBytes});
  ASSERT_TRUE(CreateModel("m").ok());
  const InflightBudget& budget = server_->core().inflight_budget();
  const std::vector<float> values(kValues, 0.25f);

  // Two streams hold the whole budget with half-sent batches.
  std::vector<std::unique_ptr<OpenStream>> holders;
  std::vector<std::vector<v1::RecordRequest>> held;
  for (int h = 0; h < 2; ++h) {
    holders.push_back(std::make_unique<OpenStream>(*stub_));
    held.push_back(FloatBatch("m", absl::StrCat("held", h), {kValues}, values, 64 << 10));
    ASSERT_TRUE(holders[h]->writer->Write(held[h][0]));  // header and the first chunk
  }
  ASSERT_TRUE(Eventually([&] { return budget.reserved_bytes() == 2 * kBatchBytes; }));

  constexpr int kWaiters = 4;
  constexpr int kBatches = 3;
  std::vector<RecordResult> results(kWaiters);
  std::vector<std::thread> threads;
  for (int s = 0; s < kWaiters; ++s) {
    std::vector<v1::RecordRequest> messages;
    for (int b = 0; b < kBatches; ++b) {
      auto batch = FloatBatch("m", absl::StrCat("q", s), {kValues}, values, 64 << 10);
      messages.insert(messages.end(), batch.begin(), batch.end());
    }
    threads.emplace_back([this, &results, s, messages] { results[s] = Record(messages); });
  }
  // Each waits at its first header, holding nothing; nothing of theirs is applied yet.
  ASSERT_TRUE(Eventually([&] { return budget.waiting() == kWaiters; }));
  EXPECT_EQ(budget.reserved_bytes(), 2 * kBatchBytes);
  EXPECT_EQ(GetModel("m").quantizers_size(), 0);

  for (int h = 0; h < 2; ++h) {
    for (size_t i = 1; i < held[h].size(); ++i) ASSERT_TRUE(holders[h]->writer->Write(held[h][i]));
    holders[h]->writer->WritesDone();
    const grpc::Status status = holders[h]->writer->Finish();
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(holders[h]->response.batches(), 1);
  }
  for (std::thread& thread : threads) thread.join();
  for (const RecordResult& result : results) {
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    EXPECT_EQ(result.response.batches(), kBatches);
    EXPECT_EQ(result.response.elements(), kBatches * kValues);
  }
  const v1::ModelInfo info = GetModel("m");
  ASSERT_EQ(info.quantizers_size(), 2 + kWaiters);
  for (const v1::QuantizerStats& quantizer : info.quantizers()) {
    const int64_t batches = quantizer.spec().name().starts_with("held") ? 1 : kBatches;
    EXPECT_EQ(quantizer.batches(), batches) << quantizer.spec().name();
    EXPECT_EQ(quantizer.elements(), batches * kValues) << quantizer.spec().name();
  }
  EXPECT_GE(budget.waits_total(), kWaiters);
  EXPECT_EQ(budget.reserved_bytes(), 0);
  EXPECT_EQ(budget.waiting(), 0);
}

// A batch still waiting for --max-inflight-bytes when its call's deadline nears is refused with
// RESOURCE_EXHAUSTED (before the deadline, so the caller sees why) and changes nothing.
TEST_F(CalibrationServiceTest, ABatchWaitingPastItsDeadlineIsResourceExhausted) {
  constexpr int64_t kValues = 64 << 10;
  constexpr int64_t kBatchBytes = kValues * 4;
  Start(
      {.listen = "127.0.0.1:0", .max_batch_bytes = kBatchBytes, .max_inflight_bytes = kBatchBytes});
  ASSERT_TRUE(CreateModel("m").ok());
  const InflightBudget& budget = server_->core().inflight_budget();
  const std::vector<float> values(kValues, 0.5f);
  ASSERT_TRUE(Record(FloatBatch("m", "q", {kValues}, values)).status.ok());
  const v1::ModelInfo before = GetModel("m");

  OpenStream holder(*stub_);
  const auto held = FloatBatch("m", "held", {kValues}, values, 64 << 10);
  ASSERT_TRUE(holder.writer->Write(held[0]));
  ASSERT_TRUE(Eventually([&] { return budget.reserved_bytes() == kBatchBytes; }));

  OpenStream late(*stub_, std::chrono::system_clock::now() + std::chrono::seconds(2));
  for (const v1::RecordRequest& message : Concat({FloatBatch("m", "q", {kValues}, values, 64 << 10),
                                                  FloatBatch("m", "late", {kValues}, values)})) {
    if (!late.writer->Write(message)) break;
  }
  late.writer->WritesDone();
  const grpc::Status status = late.writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("--max-inflight-bytes"));
  EXPECT_THAT(status.error_message(), HasSubstr("model 'm', quantizer 'q'"));
  EXPECT_THAT(status.error_message(), HasSubstr("until the call's deadline"));
  EXPECT_EQ(GetModel("m").DebugString(), before.DebugString());  // nothing applied
  EXPECT_EQ(budget.waiting(), 0);

  // The holder was never disturbed.
  for (size_t i = 1; i < held.size(); ++i) ASSERT_TRUE(holder.writer->Write(held[i]));
  holder.writer->WritesDone();
  ASSERT_TRUE(holder.writer->Finish().ok());
  EXPECT_EQ(holder.response.batches(), 1);
  EXPECT_EQ(budget.reserved_bytes(), 0);
}

// A caller that cancels while its batch waits for --max-inflight-bytes frees its server thread
// at once (well before --max-inflight-wait-seconds, 60 by default).
TEST_F(CalibrationServiceTest, CancellingAWaitingStreamEndsItsWait) {
  constexpr int64_t kValues = 64 << 10;
  constexpr int64_t kBatchBytes = kValues * 4;
  Start(
      {.listen = "127.0.0.1:0", .max_batch_bytes = kBatchBytes, .max_inflight_bytes = kBatchBytes});
  ASSERT_TRUE(CreateModel("m").ok());
  const InflightBudget& budget = server_->core().inflight_budget();
  const std::vector<float> values(kValues, 0.5f);
  OpenStream holder(*stub_);
  const auto held = FloatBatch("m", "held", {kValues}, values, 64 << 10);
  ASSERT_TRUE(holder.writer->Write(held[0]));
  ASSERT_TRUE(Eventually([&] { return budget.reserved_bytes() == kBatchBytes; }));

  OpenStream waiting(*stub_);
  ASSERT_TRUE(waiting.writer->Write(FloatBatch("m", "q", {kValues}, values, 1024)[0]));
  ASSERT_TRUE(Eventually([&] { return budget.waiting() == 1; }));
  waiting.context.TryCancel();
  EXPECT_EQ(waiting.writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(Eventually([&] { return budget.waiting() == 0; }));
  EXPECT_EQ(budget.reserved_bytes(), kBatchBytes);
  for (size_t i = 1; i < held.size(); ++i) ASSERT_TRUE(holder.writer->Write(held[i]));
  holder.writer->WritesDone();
  ASSERT_TRUE(holder.writer->Finish().ok());
  EXPECT_EQ(GetModel("m").quantizers_size(), 1);  // "held" only
}

TEST_F(CalibrationServiceTest, MetricsAndHealthOverHttp) {
  server_.reset();
  Start({.listen = "127.0.0.1:0", .http_listen = "127.0.0.1:0"});
  const absl::StatusOr<std::pair<std::string, int>> http = SplitHostPort(server_->http_address());
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_EQ(http->first, "127.0.0.1");
  EXPECT_THAT(server_->ReadyLine(),
              ::testing::MatchesRegex("qcal-server listening on 127\\.0\\.0\\.1:[0-9]+ http "
                                      "127\\.0\\.0\\.1:[0-9]+"));

  const std::string health = HttpGet(http->second, "/healthz");
  EXPECT_THAT(health, HasSubstr("200 OK"));
  EXPECT_THAT(health, HasSubstr("\r\n\r\nok\n"));

  ASSERT_TRUE(CreateModel("m").ok());
  ASSERT_TRUE(CreateModel("idle").ok());
  const float nan = std::nanf("");
  ASSERT_TRUE(Record(Concat({FloatBatch("m", "a._input_quantizer", {5}, {1, nan, 3, 4, 5}, 7),
                             FloatBatch("m", "b._input_quantizer", {2}, {1, 2})}))
                  .status.ok());
  ASSERT_TRUE(Record(Batch("m", "a._input_quantizer", v1::DTYPE_FLOAT16, {3},
                           std::string("\x00\x3c\x00\x7c\x00\x40", 6), 6))
                  .status.ok());  // 1, +inf, 2 in float16

  const std::string metrics = HttpGet(http->second, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("200 OK"));
  EXPECT_THAT(metrics, HasSubstr("qcal_record_batches_total{model=\"m\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("qcal_record_elements_total{model=\"m\"} 10\n"));
  EXPECT_THAT(metrics, HasSubstr("qcal_record_nonfinite_total{model=\"m\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("qcal_record_bytes_total{model=\"m\"} 34\n"));
  EXPECT_THAT(metrics, HasSubstr("qcal_record_elements_total{model=\"idle\"} 0\n"));
  EXPECT_THAT(metrics, HasSubstr("qcal_record_streams_active 0\n"));
  EXPECT_THAT(metrics, HasSubstr("qcal_rpc_duration_seconds_count{method=\"Record\"} 2\n"));
  EXPECT_THAT(metrics, HasSubstr("qcal_rpc_duration_seconds_count{method=\"CreateModel\"} 2\n"));

  // A deleted model's series go away.
  grpc::ClientContext context;
  v1::DeleteModelRequest del;
  del.set_model("idle");
  v1::DeleteModelResponse deleted;
  ASSERT_TRUE(stub_->DeleteModel(&context, del, &deleted).ok());
  EXPECT_THAT(HttpGet(http->second, "/metrics"), ::testing::Not(HasSubstr("model=\"idle\"")));
  EXPECT_THAT(HttpGet(http->second, "/nothing-here"), HasSubstr("404"));
}

// Two clients computing different methods on one model at the same time: each ComputeAmax
// response carries the table that call computed, in all three forms (a GetAmaxTable after it
// could return the other client's).
TEST_F(CalibrationServiceTest, ConcurrentComputeAmaxEachGetsItsOwnTable) {
  ASSERT_TRUE(CreateModel("m").ok());
  std::vector<float> values(1000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i) / 100.0f;
  values.back() = 100.0f;  // max 100, percentile 99 well below
  ASSERT_TRUE(Record(FloatBatch("m", "x._input_quantizer", {1000}, values)).status.ok());

  v1::ComputeAmaxRequest max_request;
  max_request.set_model("m");
  max_request.set_method("max");
  v1::ComputeAmaxRequest percentile_request = max_request;
  percentile_request.set_method("percentile");
  percentile_request.set_percentile(99);
  v1::AmaxTableResponse max_table, percentile_table;
  ASSERT_TRUE(ComputeAmax(max_request, &max_table).ok());
  ASSERT_TRUE(ComputeAmax(percentile_request, &percentile_table).ok());
  EXPECT_EQ(max_table.table().quantizers(0).amax(0), 100.0f);
  EXPECT_LT(percentile_table.table().quantizers(0).amax(0), 10.0f);
  // 100 / 127 is 3f499326 in float32.
  EXPECT_EQ(max_table.trt_cache(), "TRT-8601-EntropyCalibration2\nx._input_quantizer: 3f499326\n");
  EXPECT_THAT(percentile_table.json(), HasSubstr("\"method\": \"percentile\""));
  ASSERT_NE(max_table.trt_cache(), percentile_table.trt_cache());

  constexpr int kCalls = 100;
  const auto run = [&](const v1::ComputeAmaxRequest& request, const v1::AmaxTableResponse& own,
                       int* wrong) {
    for (int i = 0; i < kCalls; ++i) {
      v1::AmaxTableResponse got;
      if (!ComputeAmax(request, &got).ok() || got.SerializeAsString() != own.SerializeAsString()) {
        ++*wrong;
      }
    }
  };
  int max_wrong = 0, percentile_wrong = 0;
  std::thread max_thread(run, std::cref(max_request), std::cref(max_table), &max_wrong);
  std::thread percentile_thread(run, std::cref(percentile_request), std::cref(percentile_table),
                                &percentile_wrong);
  max_thread.join();
  percentile_thread.join();
  EXPECT_EQ(max_wrong, 0);
  EXPECT_EQ(percentile_wrong, 0);
}

// The TensorRT cache writes the scales the QDQ export writes, and says where it replaced one.
TEST_F(CalibrationServiceTest, TrtCacheScalesFollowTheQdqRuleWithWarnings) {
  ASSERT_TRUE(CreateModel("m").ok());
  ASSERT_TRUE(Record(Concat({FloatBatch("m", "dead._input_quantizer", {3}, {0.0f, -0.0f, 0.0f}),
                             FloatBatch("m", "tiny._input_quantizer", {2}, {1e-44f, 0.0f}),
                             FloatBatch("m", "small._weight_quantizer", {1, 1}, {1e-44f})}))
                  .status.ok());
  v1::AmaxTableResponse computed, stored;
  ASSERT_TRUE(ComputeAmax("m", "max", &computed).ok());
  ASSERT_TRUE(GetAmaxTable("m", &stored).ok());
  for (const v1::AmaxTableResponse* response : {&computed, &stored}) {
    // Not 00000000 (1e-44 / 127 rounds to 0), not a subnormal: FLT_MIN, and 1 for an amax of 0.
    EXPECT_EQ(response->trt_cache(),
              "TRT-8601-EntropyCalibration2\n"
              "dead._input_quantizer: 3f800000\n"
              "tiny._input_quantizer: 00800000\n");
    EXPECT_THAT(response->warnings(),
                ::testing::ElementsAre(
                    "TensorRT calibration cache: quantizer 'dead._input_quantizer' tensor "
                    "'dead._input_quantizer' (per-tensor): amax is 0; scale written as 1",
                    "TensorRT calibration cache: quantizer 'tiny._input_quantizer' tensor "
                    "'tiny._input_quantizer' (per-tensor): amax 9.80909e-45 gives a scale below "
                    "the smallest normal float; scale written as 1.17549e-38"));
  }
}

// A raw caller is held to the client's name rule: INVALID_ARGUMENT, nothing created, and no
// forged TensorRT cache line.
TEST_F(CalibrationServiceTest, NamesThatAreNotNamesAreRefusedOnTheWire) {
  EXPECT_REFUSED(CreateModel("a\nb"), INVALID_ARGUMENT,
                 "model name 'a\\nb' contains control character 0x0a at offset 1; names are 1 "
                 "to 1024 bytes of UTF-8 without control characters");
  EXPECT_REFUSED(CreateModel(std::string(1025, 'm')), INVALID_ARGUMENT, "is 1025 bytes long");
  {
    v1::CreateModelRequest request;
    request.add_quantizers()->set_name("q\nforged: 3f800000");
    EXPECT_REFUSED(CreateModel("m", request), INVALID_ARGUMENT,
                   "model 'm': declared quantizer name 'q\\nforged: 3f800000'");
  }
  {
    grpc::ClientContext context;
    v1::ListModelsResponse list;
    ASSERT_TRUE(stub_->ListModels(&context, {}, &list).ok());
    EXPECT_EQ(list.models_size(), 0);
  }
  grpc::Status status;
  GetModel(std::string(1025, 'm'), &status);
  EXPECT_REFUSED(status, INVALID_ARGUMENT, "model name");
  GetModel("tab\tname", &status);
  EXPECT_REFUSED(status, INVALID_ARGUMENT, "contains control character 0x09");
  GetModel("nope", &status);
  EXPECT_REFUSED(status, NOT_FOUND, "unknown model 'nope'");

  ASSERT_TRUE(CreateModel("m").ok());
  EXPECT_REFUSED(
      Record(FloatBatch("m", "x._input_quantizer\nforged: 00000000", {1}, {1.0f})).status,
      INVALID_ARGUMENT, "model 'm': quantizer name 'x._input_quantizer\\nforged: 00000000'");
  EXPECT_EQ(GetModel("m").quantizers_size(), 0);
  ASSERT_TRUE(Record(FloatBatch("m", "x._input_quantizer", {2}, {1.0f, -2.54f})).status.ok());
  const std::string before = StateOf("m");

  v1::Histogram histogram;
  EXPECT_REFUSED(GetHistogram("m", "q\x7f", &histogram), INVALID_ARGUMENT,
                 "contains control character 0x7f");
  v1::ComputeAmaxRequest compute;
  compute.set_model("m");
  compute.set_method("max");
  Override(&compute, "x._input_quantizer\n")->set_method("max");
  EXPECT_REFUSED(ComputeAmax(compute), INVALID_ARGUMENT, "quantizer name of an override");
  const std::string onnx = ReadFile(TestModelPath("cnn_bn.onnx"));
  v1::UploadOnnxResponse uploaded;
  EXPECT_REFUSED(UploadOnnx("m", onnx, 1000, &uploaded, {{"x._input_quantizer", "in\nput"}}),
                 INVALID_ARGUMENT, "ONNX tensor name of quantizer 'x._input_quantizer'");
  EXPECT_REFUSED(UploadOnnx("m", onnx, 1000, &uploaded, {{"x\r", "input"}}), INVALID_ARGUMENT,
                 "quantizer name in tensor_map");
  v1::ExportOnnxRequest export_request;
  export_request.set_model("m");
  export_request.mutable_compute()->set_method("max");
  SetTensor(&export_request, "x._input_quantizer", "input\n");
  std::string bytes;
  std::vector<std::string> warnings;
  EXPECT_REFUSED(ExportOnnx(export_request, &bytes, &warnings, onnx), INVALID_ARGUMENT,
                 "ONNX tensor name of quantizer 'x._input_quantizer'");
  EXPECT_EQ(StateOf("m"), before);

  v1::AmaxTableResponse table;
  ASSERT_TRUE(ComputeAmax("m", "max", &table).ok());
  EXPECT_EQ(table.trt_cache(), "TRT-8601-EntropyCalibration2\nx._input_quantizer: 3ca3d70a\n");
}

// A raw caller's parameters the method does not use are refused as the clients refuse them,
// overrides and ExportOnnx's `compute` included; numbers are printed in full.
TEST_F(CalibrationServiceTest, ParametersTheMethodDoesNotUseAreRefused) {
  ASSERT_TRUE(CreateModel("m").ok());
  ASSERT_TRUE(Record(FloatBatch("m", "x._input_quantizer", {3}, {1.0f, 2.0f, 3.0f})).status.ok());
  ASSERT_TRUE(ComputeAmax("m", "max").ok());
  const std::string before = StateOf("m");
  const auto request = [](const std::string& method) {
    v1::ComputeAmaxRequest out;
    out.set_model("m");
    out.set_method(method);
    return out;
  };
  v1::ComputeAmaxRequest bad = request("max");
  bad.set_percentile(99.9);
  EXPECT_REFUSED(ComputeAmax(bad), INVALID_ARGUMENT,
                 "model 'm', ComputeAmax: percentile 99.9 applies only to method percentile, not "
                 "'max'");
  bad = request("entropy");
  bad.set_percentile(99.9);
  EXPECT_REFUSED(ComputeAmax(bad), INVALID_ARGUMENT, "not 'entropy'");
  bad = request("percentile");
  bad.set_start_bin(64);
  EXPECT_REFUSED(ComputeAmax(bad), INVALID_ARGUMENT,
                 "start_bin 64 applies only to methods entropy and mse, not 'percentile'");
  bad = request("max");
  bad.set_stride(2);
  EXPECT_REFUSED(ComputeAmax(bad), INVALID_ARGUMENT, "stride 2 applies only to methods");
  bad = request("mse");
  v1::MethodOverride& override_method = *Override(&bad, "x._input_quantizer");
  override_method.set_method("max");
  override_method.set_stride(2);
  EXPECT_REFUSED(ComputeAmax(bad), INVALID_ARGUMENT,
                 "model 'm', override for quantizer 'x._input_quantizer': stride 2 applies only "
                 "to methods entropy and mse, not 'max'");
  bad = request("percentile");
  bad.set_percentile(100.0001);
  EXPECT_REFUSED(ComputeAmax(bad), INVALID_ARGUMENT, "percentile 100.0001 is outside (0, 100]");

  v1::UploadOnnxResponse uploaded;
  ASSERT_TRUE(UploadOnnx("m", ReadFile(TestModelPath("cnn_bn.onnx")), 1000, &uploaded).ok());
  v1::ExportOnnxRequest export_request;
  export_request.set_model("m");
  *export_request.mutable_compute() = request("mse");
  export_request.mutable_compute()->set_percentile(50);
  std::string bytes;
  std::vector<std::string> warnings;
  EXPECT_REFUSED(ExportOnnx(export_request, &bytes, &warnings), INVALID_ARGUMENT,
                 "percentile 50 applies only to method percentile, not 'mse'");
  EXPECT_EQ(GetModel("m").amax_method(), "max");
}

// ExportOnnx with an ONNX model in the stream is all or nothing: a refused export leaves the
// stored ONNX, its tensor map and the table as they were (seen through GetModel, the TensorRT
// cache keyed by the stored model's tensors, and an export of the stored model).
TEST_F(CalibrationServiceTest, RefusedExportWithANewOnnxChangesNothing) {
  ASSERT_TRUE(CreateModel("cnn").ok());
  ASSERT_TRUE(Record(Concat({FloatBatch("cnn", "conv1._input_quantizer", {1, 1, 2, 2},
                                        {0.5f, -1.0f, 2.0f, 0.25f}),
                             FloatBatch("cnn", "conv2._input_quantizer", {2}, {3.0f, -1.0f}),
                             FloatBatch("cnn", "fc1._input_quantizer", {2}, {0.0f, 5.0f})}))
                  .status.ok());
  const std::string cnn_bn = ReadFile(TestModelPath("cnn_bn.onnx"));
  // The explicit pair moves conv2's quantizer onto the graph input, so the tensor map shows in
  // the cache: "input" takes conv2's amax 3, conv1's quantizer (unbound now) keeps its name.
  v1::UploadOnnxResponse uploaded;
  ASSERT_TRUE(
      UploadOnnx("cnn", cnn_bn, 1000, &uploaded, {{"conv2._input_quantizer", "input"}}).ok());
  ASSERT_TRUE(ComputeAmax("cnn", "max").ok());
  v1::AmaxTableResponse table;
  ASSERT_TRUE(GetAmaxTable("cnn", &table).ok());
  const std::string cache_before = table.trt_cache();
  EXPECT_EQ(cache_before,
            "TRT-8601-EntropyCalibration2\n"
            "/Flatten_output_0: 3d214285\n"       // fc1: 5 / 127
            "conv1._input_quantizer: 3c810204\n"  // 2 / 127
            "input: 3cc18306\n");                 // conv2: 3 / 127
  v1::ExportOnnxRequest stored_export;
  stored_export.set_model("cnn");
  std::string exported_before;
  std::vector<std::string> warnings;
  ASSERT_TRUE(ExportOnnx(stored_export, &exported_before, &warnings).ok());
  const std::string before = StateOf("cnn");

  v1::ExportOnnxRequest request;
  request.set_model("cnn");
  request.mutable_compute()->set_method("entropy");
  std::string bytes;
  // No node of linear3d (fc, proj) belongs to conv1, conv2 or fc1.
  EXPECT_REFUSED(ExportOnnx(request, &bytes, &warnings, ReadFile(TestModelPath("linear3d.onnx"))),
                 FAILED_PRECONDITION, "matches a Conv, ConvTranspose, Gemm, MatMul, pooling node");
  EXPECT_REFUSED(ExportOnnx(request, &bytes, &warnings, "not an ONNX model"), INVALID_ARGUMENT,
                 "model 'cnn', ExportOnnx");
  v1::ExportOnnxRequest mapped = request;
  SetTensor(&mapped, "conv1._input_quantizer", "nope");
  EXPECT_REFUSED(ExportOnnx(mapped, &bytes, &warnings, cnn_bn), INVALID_ARGUMENT, "nope");
  v1::ExportOnnxRequest bad_method = request;
  bad_method.mutable_compute()->set_method("kl");
  EXPECT_REFUSED(ExportOnnx(bad_method, &bytes, &warnings, cnn_bn), INVALID_ARGUMENT,
                 "unknown method 'kl'");
  EXPECT_TRUE(bytes.empty());

  EXPECT_EQ(StateOf("cnn"), before);
  EXPECT_TRUE(GetModel("cnn").has_onnx());
  EXPECT_EQ(GetModel("cnn").amax_method(), "max");
  ASSERT_TRUE(GetAmaxTable("cnn", &table).ok());
  EXPECT_EQ(table.trt_cache(), cache_before);
  std::string exported_after;
  ASSERT_TRUE(ExportOnnx(stored_export, &exported_after, &warnings).ok());
  EXPECT_EQ(exported_after, exported_before);

  // A successful export stores the sent model, its (empty) tensor map and the computed table.
  ASSERT_TRUE(ExportOnnx(request, &bytes, &warnings, cnn_bn, 777).ok());
  EXPECT_EQ(GetModel("cnn").amax_method(), "entropy");
  v1::ExportOnnxRequest stored_max = stored_export;
  stored_max.mutable_compute()->set_method("max");
  bytes.clear();
  ASSERT_TRUE(ExportOnnx(stored_max, &bytes, &warnings).ok());
  ASSERT_TRUE(GetAmaxTable("cnn", &table).ok());
  EXPECT_EQ(table.trt_cache(),
            "TRT-8601-EntropyCalibration2\n"
            "/Flatten_output_0: 3d214285\n"
            "/pool/MaxPool_output_0: 3cc18306\n"
            "input: 3c810204\n");
}

// Without a stored ONNX model or table, a refused export that sent an ONNX model stores nothing;
// the same export with `compute` stores both.
TEST_F(CalibrationServiceTest, ExportSendingOnnxStoresItOnlyOnSuccess) {
  ASSERT_TRUE(CreateModel("cnn").ok());
  ASSERT_TRUE(Record(FloatBatch("cnn", "conv1._input_quantizer", {2}, {0.5f, -2.0f})).status.ok());
  const std::string cnn_bn = ReadFile(TestModelPath("cnn_bn.onnx"));
  v1::ExportOnnxRequest request;
  request.set_model("cnn");
  std::string bytes;
  std::vector<std::string> warnings;
  EXPECT_REFUSED(ExportOnnx(request, &bytes, &warnings, cnn_bn), FAILED_PRECONDITION,
                 "no amax table; call ComputeAmax first or set ExportOnnxRequest.compute (e.g. "
                 "`qcal export --method M`)");
  EXPECT_FALSE(GetModel("cnn").has_onnx());
  request.mutable_compute()->set_method("max");
  ASSERT_TRUE(ExportOnnx(request, &bytes, &warnings, cnn_bn, 4096).ok());
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(bytes));
  EXPECT_TRUE(GetModel("cnn").has_onnx());
  EXPECT_EQ(GetModel("cnn").amax_method(), "max");
  v1::AmaxTableResponse table;
  ASSERT_TRUE(GetAmaxTable("cnn", &table).ok());
  EXPECT_EQ(table.trt_cache(), "TRT-8601-EntropyCalibration2\ninput: 3c810204\n");
}

TEST_F(CalibrationServiceTest, MalformedExportStreamsAreRefused) {
  ASSERT_TRUE(CreateModel("m").ok());
  ASSERT_TRUE(Record(FloatBatch("m", "conv1._input_quantizer", {2}, {0.5f, -2.0f})).status.ok());
  const std::string cnn_bn = ReadFile(TestModelPath("cnn_bn.onnx"));
  const std::string before = StateOf("m");
  std::string bytes;
  std::vector<std::string> warnings;
  EXPECT_REFUSED(ExportOnnxMessages({}, &bytes, &warnings), INVALID_ARGUMENT,
                 "an ExportOnnx stream without messages exports nothing");
  v1::ExportOnnxRequest first;
  first.mutable_compute()->set_method("max");
  EXPECT_REFUSED(ExportOnnx(first, &bytes, &warnings, cnn_bn), INVALID_ARGUMENT,
                 "the first ExportOnnx message needs `model`");
  first.set_model("nope");
  EXPECT_REFUSED(ExportOnnx(first, &bytes, &warnings, cnn_bn), NOT_FOUND, "unknown model 'nope'");
  first.set_model("m");
  v1::ExportOnnxRequest later;
  later.set_data(cnn_bn);
  later.set_target("onnxruntime");
  EXPECT_REFUSED(
      ExportOnnxMessages({first, later}, &bytes, &warnings), INVALID_ARGUMENT,
      "compute, target, tensor_map, explain and fp8_ops belong in the first message only");
  later.clear_target();
  later.set_fp8_ops("trt");
  EXPECT_REFUSED(ExportOnnxMessages({first, later}, &bytes, &warnings), INVALID_ARGUMENT,
                 "fp8_ops belong in the first message only");
  later.clear_fp8_ops();
  later.set_model("other");
  EXPECT_REFUSED(ExportOnnxMessages({first, later}, &bytes, &warnings), INVALID_ARGUMENT,
                 "got a message for model 'other'");
  v1::ExportOnnxRequest mapped = first;
  SetTensor(&mapped, "conv1._input_quantizer", "input");
  EXPECT_REFUSED(ExportOnnx(mapped, &bytes, &warnings), INVALID_ARGUMENT,
                 "tensor_map applies to an ONNX model sent in the same stream");
  first.set_target("tflite");
  EXPECT_REFUSED(ExportOnnx(first, &bytes, &warnings, cnn_bn), INVALID_ARGUMENT,
                 "unknown target 'tflite'");
  first.clear_target();
  first.set_fp8_ops("fp8");
  EXPECT_REFUSED(ExportOnnx(first, &bytes, &warnings, cnn_bn), INVALID_ARGUMENT,
                 "ExportOnnx: FP8 ops 'fp8': expected \"onnx\"");
  first.clear_fp8_ops();
  EXPECT_EQ(StateOf("m"), before);

  // The sent model counts against --max-batch-bytes, as an upload does.
  server_.reset();
  Start({.listen = "127.0.0.1:0", .max_batch_bytes = 1024});
  ASSERT_TRUE(CreateModel("m").ok());
  first.clear_target();
  EXPECT_REFUSED(ExportOnnx(first, &bytes, &warnings, cnn_bn, 600), RESOURCE_EXHAUSTED,
                 "model 'm', ExportOnnx: the ONNX model is larger than the server's limit of "
                 "1024 bytes (--max-batch-bytes)");
  EXPECT_FALSE(GetModel("m").has_onnx());
}

TEST(QcalServerTest, FlagsAreCheckedWithClearMessages) {
  EXPECT_EQ(ValidateServerOptions({.listen = "127.0.0.1:0", .max_batch_bytes = 0}),
            absl::InvalidArgumentError("--max-batch-bytes must be >= 1 (bytes), got 0"));
  EXPECT_EQ(ValidateServerOptions({.listen = "127.0.0.1:0", .max_batch_bytes = -5}),
            absl::InvalidArgumentError("--max-batch-bytes must be >= 1 (bytes), got -5"));
  EXPECT_EQ(
      ValidateServerOptions({.listen = "127.0.0.1:0", .max_message_bytes = kMinMessageBytes - 1}),
      absl::InvalidArgumentError(
          "--max-message-bytes must be >= 4259840 (4 MiB + 64 KiB: clients send data in 4 MiB "
          "chunks plus the message's other fields), got 4259839"));
  EXPECT_EQ(ValidateServerOptions({.listen = "127.0.0.1"}),
            absl::InvalidArgumentError(
                "--listen: address '127.0.0.1' is not HOST:PORT (port 0..65535; 0 picks one)"));
  EXPECT_EQ(ValidateServerOptions({.listen = "127.0.0.1:0", .http_listen = "x"}).message(),
            "--http-listen: address 'x' is not HOST:PORT (port 0..65535; 0 picks one)");
  EXPECT_TRUE(ValidateServerOptions({.listen = "127.0.0.1:0"}).ok());
  EXPECT_EQ(ValidateServerOptions({.listen = "127.0.0.1:0", .max_concurrent_calls = 1}),
            absl::InvalidArgumentError(
                "--max-concurrent-calls must be in 2..1048576 (a client keeps its Record stream "
                "open while it makes other calls: it needs 2), got 1"));
  EXPECT_EQ(
      ValidateServerOptions({.listen = "127.0.0.1:0", .max_concurrent_calls = 1048577}).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ValidateServerOptions({.listen = "127.0.0.1:0", .max_concurrent_calls = 2}).ok());
  EXPECT_TRUE(
      ValidateServerOptions({.listen = "127.0.0.1:0", .max_concurrent_calls = 1048576}).ok());

  // The smallest limit still takes what clients send: a 4 MiB chunk with its header.
  absl::StatusOr<std::unique_ptr<QcalServer>> server =
      QcalServer::Start({.listen = "127.0.0.1:0", .max_message_bytes = kMinMessageBytes});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::Calibration::NewStub(
      grpc::CreateChannel((*server)->grpc_address(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext context;
    v1::CreateModelRequest create;
    create.set_model(std::string(1024, 'm'));
    v1::ModelInfo info;
    ASSERT_TRUE(stub->CreateModel(&context, create, &info).ok());
  }
  grpc::ClientContext context;
  v1::RecordResponse response;
  auto writer = stub->Record(&context, &response);
  const std::vector<float> values((size_t{4} << 20) / sizeof(float), 1.5f);
  for (const v1::RecordRequest& message :
       FloatBatch(std::string(1024, 'm'), std::string(1024, 'q'),
                  {static_cast<int64_t>(values.size())}, values, size_t{4} << 20)) {
    ASSERT_TRUE(writer->Write(message));
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.bytes(), int64_t{4} << 20);
}

TEST(QcalServerTest, InflightBytesMustHoldTheLargestBatch) {
  EXPECT_EQ(
      ValidateServerOptions(
          {.listen = "127.0.0.1:0", .max_batch_bytes = 1000, .max_inflight_bytes = 999}),
      absl::InvalidArgumentError("--max-inflight-bytes (999) must be >= --max-batch-bytes (1000): "
                                 "a batch of the largest size must fit; 0 means twice "
                                 "--max-batch-bytes"));
  EXPECT_TRUE(ValidateServerOptions(
                  {.listen = "127.0.0.1:0", .max_batch_bytes = 1000, .max_inflight_bytes = 1000})
                  .ok());
  EXPECT_EQ(InflightBytesLimit({.max_batch_bytes = 1000}), 2000);
  EXPECT_EQ(InflightBytesLimit({.max_batch_bytes = std::numeric_limits<int64_t>::max()}),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(ValidateServerOptions({.listen = "127.0.0.1:0", .max_inflight_wait_seconds = 0}),
            absl::InvalidArgumentError("--max-inflight-wait-seconds must be >= 1, got 0"));
}

TEST(QcalServerTest, ListenFailuresSayWhy) {
  const absl::Status invalid = QcalServer::Start({.listen = "999.1.1.1:5"}).status();
  EXPECT_EQ(invalid.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(invalid.message()),
              ::testing::StartsWith(
                  "cannot listen on 999.1.1.1:5: invalid address or port in use (999.1.1.1: "));
  absl::StatusOr<std::unique_ptr<QcalServer>> first = QcalServer::Start({.listen = "127.0.0.1:0"});
  ASSERT_TRUE(first.ok());
  const std::string address = (*first)->grpc_address();
  EXPECT_EQ(QcalServer::Start({.listen = address}).status(),
            absl::UnavailableError(absl::StrCat("cannot listen on ", address,
                                                ": invalid address or port in use (", address,
                                                ": Address already in use)")));
}

TEST(QcalServerTest, RefusesBadAddresses) {
  EXPECT_EQ(QcalServer::Start({.listen = "no-port"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QcalServer::Start({.listen = "127.0.0.1:70000"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      QcalServer::Start({.listen = "127.0.0.1:0", .http_listen = "127.0.0.1"}).status().code(),
      absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<QcalServer>> first = QcalServer::Start({.listen = "127.0.0.1:0"});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)->ReadyLine().substr((*first)->ReadyLine().size() - 8), "http off");
  // The same port twice cannot be bound.
  EXPECT_EQ(QcalServer::Start({.listen = (*first)->grpc_address()}).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace qcal::server

namespace qcal::server {
namespace {

// A ComputeAmax whose client cancels it stops on the server (qcal_compute_amax_cancelled_total
// counts it), stores nothing, and leaves the model free for Record. The computation is held at a
// known point by the core's test hook, which waits until the server sees the cancellation.
TEST(ComputeAmaxCancelTest, ACancelledCallStopsOnTheServerAndStoresNothing) {
  absl::Notification holding;
  std::atomic<bool> saw_cancel{false};
  ServerOptions options{.listen = "127.0.0.1:0"};
  options.before_amax_for_testing = [&](const std::function<bool()>& cancelled) {
    holding.Notify();
    for (int i = 0; i < 30000 && !(cancelled && cancelled()); ++i)
      absl::SleepFor(absl::Milliseconds(1));
    saw_cancel = cancelled && cancelled();
  };
  absl::StatusOr<std::unique_ptr<QcalServer>> server = QcalServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::Calibration::NewStub(
      grpc::CreateChannel((*server)->grpc_address(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext context;
    v1::CreateModelRequest request;
    request.set_model("m");
    v1::ModelInfo info;
    ASSERT_TRUE(stub->CreateModel(&context, request, &info).ok());
  }
  const auto record = [&] {
    grpc::ClientContext context;
    v1::RecordResponse response;
    auto writer = stub->Record(&context, &response);
    for (const v1::RecordRequest& message :
         FloatBatch("m", "x._input_quantizer", {3}, {1.0f, -2.0f, 0.5f})) {
      writer->Write(message);
    }
    writer->WritesDone();
    return writer->Finish();
  };
  ASSERT_TRUE(record().ok());

  grpc::ClientContext context;
  v1::ComputeAmaxRequest request;
  request.set_model("m");
  request.set_method("mse");
  v1::AmaxTableResponse response;
  std::thread canceller([&] {
    holding.WaitForNotification();
    context.TryCancel();
  });
  const grpc::Status status = stub->ComputeAmax(&context, request, &response);
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  // The handler may still be finishing when the client sees CANCELLED.
  for (int i = 0; i < 3000 && (*server)->core().metrics().amax_cancelled() < 1; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(saw_cancel.load());
  EXPECT_EQ((*server)->core().metrics().amax_cancelled(), 1);
  EXPECT_EQ((*server)->core().GetAmaxTable("m").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(record().ok());
  EXPECT_EQ((*server)->core().GetModel("m")->quantizers.at(0).stats.batches, 2);
}

// A refused Record stream says in its status details what it applied before the error
// (RpcStatus wrapping a RecordResponse), so a client counts its batches exactly.
TEST_F(CalibrationServiceTest, ARefusedStreamSaysWhatItApplied) {
  ASSERT_TRUE(CreateModel("m").ok());
  std::vector<v1::RecordRequest> messages;
  for (int i = 0; i < 3; ++i) {
    for (v1::RecordRequest& message :
         FloatBatch(i == 0 ? "m" : "", "w._weight_quantizer", {2, 2}, {1, 2, 3, float(i)})) {
      messages.push_back(std::move(message));
    }
  }
  for (v1::RecordRequest& message : FloatBatch("", "w._weight_quantizer", {3}, {1, 2, 3})) {
    messages.push_back(std::move(message));  // 3 channels, not 2: refused
  }
  const RecordResult result = Record(messages);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::RpcStatus details;
  ASSERT_TRUE(details.ParseFromString(result.status.error_details()));
  EXPECT_EQ(details.code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(details.message(), result.status.error_message());
  ASSERT_EQ(details.details_size(), 1);
  v1::RecordResponse applied;
  ASSERT_TRUE(details.details(0).UnpackTo(&applied));
  EXPECT_EQ(applied.batches(), 3);
  EXPECT_EQ(applied.elements(), 12);
  EXPECT_EQ(applied.bytes(), 48);
}

}  // namespace
}  // namespace qcal::server
