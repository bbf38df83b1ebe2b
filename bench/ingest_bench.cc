// End-to-end ingest over loopback gRPC: N trainer streams send 16M-element float32 batches into
// the histograms of one qcal-server (2048 bins, every batch inside the range after the first:
// the steady state of a calibration run). The rate is float32 bytes applied per wall-clock
// second, from the first Record to the last stream's acknowledgement.
//
//   qcal_bench_ingest --server=127.0.0.1:50051    # a running qcal-server (bench/run.sh starts one)
//   qcal_bench_ingest                             # an in-process server on a free port
//
// BM_IngestSession/N: each trainer has its own qcal::Client and ModelSession (the C++ client as
// trainers use it: Record copies the tensor, a sender thread streams it; gRPC lets the channels
// of one process share a connection). BM_IngestStreams/N: each trainer opens a connection of
// its own, as separate trainer processes would, and writes client/record_chunker.h's messages
// straight to the stub. BM_IngestEncoded/N: the same messages serialized once up front, so the
// client costs little more than its socket writes and the rate is the server's capacity (on
// one machine the trainers' copies otherwise share its 2 cores). Each trainer feeds its own
// quantizer.
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_data.h"
#include "client/batch.h"
#include "client/record_chunker.h"
#include "qcal/client.h"
#include "qcal/v1/calibration.grpc.pb.h"
#include "server/rpc/qcal_server.h"
#include "spdlog/spdlog.h"

namespace qcal::bench {
namespace {

// Batches each trainer sends per benchmark iteration (then it flushes / closes its stream).
constexpr int kBatchesPerIteration = 4;

std::string& ServerAddress() {
  static std::string* address = new std::string();
  return *address;
}

const std::vector<float>& Tensor() {
  static const std::vector<float>* values = new std::vector<float>(NormalValues(kTensorElements));
  return *values;
}

const std::vector<int64_t> kShape = {kTensorElements / 4096, 4096};

class Trainer {
 public:
  virtual ~Trainer() = default;
  // Sends `batches` copies of the tensor and waits until the server applied them.
  virtual absl::Status Send(int batches) = 0;
};

class SessionTrainer : public Trainer {
 public:
  SessionTrainer(std::unique_ptr<Client> client, std::string_view model, std::string quantizer)
      : client_(std::move(client)),
        session_(client_->Model(model)),
        quantizer_(std::move(quantizer)) {}

  absl::Status Send(int batches) override {
    const std::vector<float>& x = Tensor();
    const TensorView view{DType::kFloat32, kShape, std::as_bytes(std::span(x))};
    for (int b = 0; b < batches; ++b) {
      if (absl::Status s = session_->Record(quantizer_, view); !s.ok()) return s;
    }
    return session_->Flush();
  }

 private:
  std::unique_ptr<Client> client_;
  std::unique_ptr<ModelSession> session_;
  std::string quantizer_;
};

class StreamTrainer : public Trainer {
 public:
  StreamTrainer(std::string model, std::string quantizer) : model_(std::move(model)) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    stub_ = v1::Calibration::NewStub(
        grpc::CreateCustomChannel(ServerAddress(), grpc::InsecureChannelCredentials(), args));
    const std::vector<float>& x = Tensor();
    batch_.quantizer = std::move(quantizer);
    batch_.shape = kShape;
    batch_.data.assign(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
  }

  absl::Status Send(int batches) override {
    grpc::ClientContext context;
    v1::RecordResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::RecordRequest>> writer =
        stub_->Record(&context, &response);
    for (int b = 0; b < batches; ++b) {
      const bool written = internal::ForEachRecordMessage(
          batch_, b == 0 ? std::string_view(model_) : std::string_view(), kMaxChunkBytes,
          [&](const v1::RecordRequest& message) { return writer->Write(message); });
      if (!written) break;
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    if (!status.ok()) return absl::UnknownError(status.error_message());
    return absl::OkStatus();
  }

 private:
  std::string model_;
  std::unique_ptr<v1::Calibration::Stub> stub_;
  internal::Batch batch_;
};

// Writes the same messages as StreamTrainer, serialized once up front (raw Record messages on
// a generic writer), so that the client costs little more than its socket writes: the rate is
// then what the server can take in.
class EncodedTrainer : public Trainer {
 public:
  EncodedTrainer(const std::string& model, std::string quantizer) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    channel_ = grpc::CreateCustomChannel(ServerAddress(), grpc::InsecureChannelCredentials(), args);
    const std::vector<float>& x = Tensor();
    internal::Batch batch;
    batch.quantizer = std::move(quantizer);
    batch.shape = kShape;
    batch.data.assign(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
    // The first batch of a stream names the model; later ones do not.
    for (const bool first : {true, false}) {
      internal::ForEachRecordMessage(
          batch, first ? std::string_view(model) : std::string_view(), kMaxChunkBytes,
          [&](const v1::RecordRequest& message) {
            grpc::ByteBuffer bytes;
            bool own = false;
            if (!grpc::SerializationTraits<v1::RecordRequest>::Serialize(message, &bytes, &own)
                     .ok()) {
              return false;
            }
            messages_[first ? 0 : 1].push_back(std::move(bytes));
            return true;
          });
    }
  }

  absl::Status Send(int batches) override {
    static const char kMethod[] = "/qcal.v1.Calibration/Record";
    const grpc::internal::RpcMethod method(kMethod, grpc::internal::RpcMethod::CLIENT_STREAMING,
                                           channel_);
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer(
        grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(channel_.get(), method,
                                                                      &context, &response));
    bool written = true;
    for (int b = 0; b < batches && written; ++b) {
      for (const grpc::ByteBuffer& message : messages_[b == 0 ? 0 : 1]) {
        if (!(written = writer->Write(message))) break;
      }
    }
    writer->WritesDone();
    const grpc::Status status = writer->Finish();
    if (!status.ok()) return absl::UnknownError(status.error_message());
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  // A batch's messages as the first batch of a stream (0) and as a later one (1).
  std::vector<grpc::ByteBuffer> messages_[2];
};

// Every batch sent, warm-up batches and Google Benchmark's trial runs included (printed at the
// end, to relate the server's CPU time to the bytes it handled).
std::atomic<int64_t> batches_sent{0};

// Runs every trainer's Send(batches) on a thread of its own; the first error.
absl::Status SendAll(std::vector<std::unique_ptr<Trainer>>& trainers, int batches) {
  std::vector<absl::Status> results(trainers.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < trainers.size(); ++t) {
    threads.emplace_back([&, t] { results[t] = trainers[t]->Send(batches); });
    batches_sent += batches;
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

enum class TrainerKind { kSession, kStream, kEncoded };

template <TrainerKind kKind>
void BM_Ingest(benchmark::State& state) {
  static int runs = 0;
  const std::string model = absl::StrCat("ingest", runs++);
  absl::StatusOr<std::unique_ptr<Client>> admin = Client::Create(ServerAddress());
  if (!admin.ok() || !(*admin)->CreateModel(model).ok()) {
    state.SkipWithError("cannot create the model (is the server running?)");
    return;
  }
  const int streams = static_cast<int>(state.range(0));
  std::vector<std::unique_ptr<Trainer>> trainers;
  for (int t = 0; t < streams; ++t) {
    std::string quantizer = absl::StrCat("layer", t, "._input_quantizer");
    if constexpr (kKind == TrainerKind::kSession) {
      absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(ServerAddress());
      if (!client.ok()) {
        state.SkipWithError("cannot create a client");
        return;
      }
      trainers.push_back(
          std::make_unique<SessionTrainer>(*std::move(client), model, std::move(quantizer)));
    } else if constexpr (kKind == TrainerKind::kStream) {
      trainers.push_back(std::make_unique<StreamTrainer>(model, std::move(quantizer)));
    } else {
      trainers.push_back(std::make_unique<EncodedTrainer>(model, std::move(quantizer)));
    }
  }
  // The first batch sets each histogram's range; the timed ones bin inside it.
  if (absl::Status s = SendAll(trainers, 1); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  for (auto _ : state) {
    if (absl::Status s = SendAll(trainers, kBatchesPerIteration); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  const int64_t elements = state.iterations() * streams * kBatchesPerIteration * kTensorElements;
  state.SetItemsProcessed(elements);
  state.SetBytesProcessed(elements * static_cast<int64_t>(sizeof(float)));
  trainers.clear();
  (*admin)->DeleteModel(model).IgnoreError();  // frees the histograms
}

double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double Max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

void Register() {
  for (auto* b :
       {benchmark::RegisterBenchmark("BM_IngestSession", BM_Ingest<TrainerKind::kSession>),
        benchmark::RegisterBenchmark("BM_IngestStreams", BM_Ingest<TrainerKind::kStream>),
        benchmark::RegisterBenchmark("BM_IngestEncoded", BM_Ingest<TrainerKind::kEncoded>)}) {
    b->Arg(1)
        ->Arg(2)
        ->Arg(4)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond)
        ->ComputeStatistics("min", Min)
        ->ComputeStatistics("max", Max);
  }
}

}  // namespace
}  // namespace qcal::bench

int main(int argc, char** argv) {
  // Our own flag first; the rest are Google Benchmark's.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    constexpr std::string_view kFlag = "--server=";
    if (i > 0 && std::string_view(argv[i]).starts_with(kFlag)) {
      qcal::bench::ServerAddress() = std::string(argv[i] + kFlag.size());
    } else {
      rest.push_back(argv[i]);
    }
  }
  std::unique_ptr<qcal::server::QcalServer> server;
  if (qcal::bench::ServerAddress().empty()) {
    spdlog::set_level(spdlog::level::warn);
    qcal::server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<qcal::server::QcalServer>> started =
        qcal::server::QcalServer::Start(options);
    if (!started.ok()) {
      std::fprintf(stderr, "cannot start a server: %s\n", started.status().ToString().c_str());
      return 1;
    }
    server = *std::move(started);
    qcal::bench::ServerAddress() = server->grpc_address();
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  qcal::bench::Register();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fprintf(
      stderr, "qcal_bench_ingest: %lld float32 bytes sent in all\n",
      static_cast<long long>(qcal::bench::batches_sent.load() * qcal::bench::kTensorElements *
                             static_cast<int64_t>(sizeof(float))));
  return 0;
}
