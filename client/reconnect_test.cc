// Exactly-once across broken streams, against the real service (CalibrationService over a
// CalibrationCore) in-process: the gRPC server is shut down in the middle of a session (its
// streams cancelled) and started again on the same port over the same core, as a restarting
// front-end would be; every batch must count exactly once. And a server that stays gone gives
// the reconnect deadline's error, not a hang.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "qcal/client.h"
#include "server/core/calibration_core.h"
#include "server/core/durability.h"
#include "server/core/memory_durability_testing.h"
#include "server/rpc/calibration_service.h"

namespace qcal {
namespace {

constexpr char kQuantizer[] = "x._input_quantizer";

// The gRPC front-end over a core that outlives it.
class Frontend {
 public:
  explicit Frontend(server::CalibrationCore& core) : service_(core) {}
  // Starts on `address` ("127.0.0.1:0" picks a port); returns the address bound.
  std::string Start(const std::string& address) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_GT(port, 0);
    return absl::StrCat("127.0.0.1:", port);
  }
  // Cancels the calls in flight (open Record streams end) and stops listening.
  void Stop() {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }

 private:
  server::CalibrationService service_;
  std::unique_ptr<grpc::Server> server_;
};

// Batch i: 64 values, the first i + 1 (so the histogram's count tells every batch apart).
std::vector<float> BatchValues(int i) {
  std::vector<float> values(64, 0.5f);
  values[0] = static_cast<float>(i + 1);
  return values;
}

TensorView View(const std::vector<float>& values) {
  static const std::vector<int64_t> shape = {64};
  return TensorView{DType::kFloat32, shape, std::as_bytes(std::span(values))};
}

TEST(ReconnectTest, EveryBatchCountsOnceAcrossAServerRestart) {
  server::Metrics metrics;
  server::CalibrationCore core({}, metrics);
  Frontend frontend(core);
  const std::string address = frontend.Start("127.0.0.1:0");
  auto client = Client::Create(address);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->CreateModel("m").ok());
  SessionOptions options;
  options.reconnect_deadline = absl::Seconds(30);
  auto session = (*client)->Model("m", options);

  constexpr int kBatches = 200;
  std::vector<std::vector<float>> batches;
  for (int i = 0; i < kBatches; ++i) batches.push_back(BatchValues(i));
  for (int i = 0; i < kBatches / 2; ++i)
    ASSERT_TRUE(session->Record(kQuantizer, View(batches[i])).ok());
  // Wait until the server applied some of the open stream's batches (not yet acknowledged to
  // the client: the stream is still open), then cut every stream.
  auto applied = [&] {
    absl::StatusOr<server::ModelInfo> info = core.GetModel("m");
    return info.ok() && !info->quantizers.empty() ? info->quantizers[0].stats.batches : 0;
  };
  while (applied() < 10) absl::SleepFor(absl::Milliseconds(1));
  frontend.Stop();
  // Recorded while the server is gone: queued.
  for (int i = kBatches / 2; i < kBatches; ++i) {
    ASSERT_TRUE(session->Record(kQuantizer, View(batches[i])).ok());
  }
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(frontend.Start(address), address);
  const absl::Status flushed = session->Flush();
  ASSERT_TRUE(flushed.ok()) << flushed;

  const SessionStats stats = session->Stats();
  EXPECT_GE(stats.reconnects, 1);
  EXPECT_GE(stats.duplicate_batches, 10);  // resent batches the server had applied: dropped
  // The cut stream reported nothing; the batches it applied come back as duplicates and count
  // then: the client's total is the server's.
  EXPECT_EQ(stats.applied_batches, kBatches);
  EXPECT_EQ(stats.applied_elements, 64 * kBatches);
  EXPECT_EQ(stats.dropped_batches, 0);
  EXPECT_EQ(stats.last_sequence, kBatches);
  EXPECT_EQ(stats.applied_sequence, kBatches);
  EXPECT_EQ(stats.durable_sequence, kBatches);  // no Durability: durable == applied
  EXPECT_EQ(stats.queued_bytes, 0u);

  absl::StatusOr<server::ModelInfo> info = core.GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->quantizers.at(0).stats.batches, kBatches);
  EXPECT_EQ(info->quantizers.at(0).stats.elements, 64 * kBatches);
  // The histogram holds each batch's values once: its total is the data's.
  absl::StatusOr<server::HistogramSnapshot> histogram = core.GetHistogram("m", kQuantizer);
  ASSERT_TRUE(histogram.ok()) << histogram.status();
  EXPECT_EQ(histogram->total, uint64_t{64} * kBatches);
  EXPECT_EQ(histogram->abs_max, static_cast<float>(kBatches));

  absl::StatusOr<CommitResult> committed = session->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->applied_sequence, kBatches);
  EXPECT_EQ(committed->durable_sequence, kBatches);
  frontend.Stop();
}

TEST(ReconnectTest, AServerGoneLongerThanTheDeadlineIsAnErrorNotAHang) {
  server::Metrics metrics;
  server::CalibrationCore core({}, metrics);
  Frontend frontend(core);
  const std::string address = frontend.Start("127.0.0.1:0");
  auto client = Client::Create(address);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->CreateModel("m").ok());
  SessionOptions options;
  options.reconnect_deadline = absl::Milliseconds(800);
  auto session = (*client)->Model("m", options);
  const std::vector<float> values = BatchValues(0);
  ASSERT_TRUE(session->Record(kQuantizer, View(values)).ok());
  ASSERT_TRUE(session->Flush().ok());
  frontend.Stop();  // for good
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(session->Record(kQuantizer, View(values)).ok());
  const absl::Status flushed = session->Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kUnavailable) << flushed;
  EXPECT_NE(flushed.message().find("reconnect_deadline of 800ms"), std::string::npos) << flushed;
  EXPECT_NE(flushed.message().find("could not be reached again within"), std::string::npos)
      << flushed;
  EXPECT_NE(flushed.message().find("3 recorded batches were not confirmed"), std::string::npos)
      << flushed;
  EXPECT_EQ(session->Stats().dropped_batches, 3);
  EXPECT_EQ(session->Stats().queued_bytes, 0u);
}

// A session whose server was never there (a mistyped address) does not say "again".
TEST(ReconnectTest, AServerNeverReachedIsNamedAsSuch) {
  server::Metrics metrics;
  server::CalibrationCore core({}, metrics);
  Frontend frontend(core);
  const std::string address = frontend.Start("127.0.0.1:0");
  frontend.Stop();  // the port is free now: nothing answers there
  auto client = Client::Create(address);
  ASSERT_TRUE(client.ok());
  SessionOptions options;
  options.reconnect_deadline = absl::Milliseconds(300);
  auto session = (*client)->Model("m", options);
  const std::vector<float> values = BatchValues(0);
  ASSERT_TRUE(session->Record(kQuantizer, View(values)).ok());
  const absl::Status flushed = session->Flush();
  EXPECT_EQ(flushed.code(), absl::StatusCode::kUnavailable) << flushed;
  EXPECT_NE(flushed.message().find("the server at " + address + " could not be reached within"),
            std::string::npos)
      << flushed;
}

TEST(ReconnectTest, AFullBufferOfAppliedBatchesIsCommittedAndFreed) {
  server::Metrics metrics;
  server::MemoryDurability durability;
  server::CalibrationCore core({.durability = &durability}, metrics);
  Frontend frontend(core);
  const std::string address = frontend.Start("127.0.0.1:0");
  auto client = Client::Create(address);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->CreateModel("m").ok());
  SessionOptions options;
  options.max_queue_bytes = 4 * 256;  // four batches
  auto session = (*client)->Model("m", options);
  constexpr int kBatches = 40;
  for (int i = 0; i < kBatches; ++i) {
    const std::vector<float> values = BatchValues(i);
    const absl::Status status = session->Record(kQuantizer, View(values));
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_LE(session->Stats().queued_bytes, options.max_queue_bytes);
  }
  // Record() never waited for long: each full buffer was committed and freed.
  EXPECT_GE(durability.commits.load(), kBatches / 4 - 1);
  ASSERT_TRUE(session->Flush().ok());
  SessionStats stats = session->Stats();
  EXPECT_EQ(stats.applied_sequence, kBatches);
  EXPECT_LT(stats.durable_sequence, kBatches);  // applied, not yet written
  EXPECT_GT(stats.unconfirmed_batches, 0u);     // kept for a resend until durable
  absl::StatusOr<CommitResult> committed = session->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->applied_sequence, kBatches);
  EXPECT_EQ(committed->durable_sequence, kBatches);
  stats = session->Stats();
  EXPECT_EQ(stats.durable_sequence, kBatches);
  EXPECT_EQ(stats.unconfirmed_batches, 0u);
  EXPECT_EQ(stats.queued_bytes, 0u);
  absl::StatusOr<server::ModelInfo> info = core.GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->quantizers.at(0).stats.batches, kBatches);
  ASSERT_TRUE((*client)->Commit("m").ok());
  EXPECT_EQ((*client)->Commit("nosuch").code(), absl::StatusCode::kNotFound);
  frontend.Stop();
}

// A --data-dir whose disk fills up: once `full`, every write fails as DiskDurability's would.
class FullDisk final : public server::Durability {
 public:
  absl::Status Commit(server::Model& model) override {
    if (!full) return absl::OkStatus();
    ++commits;
    return absl::UnavailableError(absl::StrCat("cannot write /data/", model.name(),
                                               ".qcalstate.tmp: write: No space left on device"));
  }
  absl::Status Forget(const std::string&) override { return absl::OkStatus(); }
  absl::Status CheckNewModel(const std::string&) override { return absl::OkStatus(); }
  std::atomic<bool> full = false;
  std::atomic<int> commits = 0;
};

// The server is there (its Record streams get through) but cannot write: Commit, and a Record()
// waiting for room that only a Commit would free, fail after the reconnect deadline with the
// server's reason, rather than retrying for ever.
TEST(ReconnectTest, ACommitThatKeepsFailingEndsAtTheDeadlineWithTheServersReason) {
  server::Metrics metrics;
  FullDisk disk;
  server::CalibrationCore core({.durability = &disk}, metrics);
  Frontend frontend(core);
  const std::string address = frontend.Start("127.0.0.1:0");
  auto client = Client::Create(address);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->CreateModel("m").ok());
  SessionOptions options;
  options.reconnect_deadline = absl::Milliseconds(1500);
  options.max_queue_bytes = 4 * 256;  // four batches
  auto session = (*client)->Model("m", options);
  const std::vector<float> values = BatchValues(0);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(session->Record(kQuantizer, View(values)).ok());
  ASSERT_TRUE(session->Flush().ok());  // applied; only the write fails
  disk.full = true;

  const absl::StatusOr<CommitResult> committed = session->Commit();
  ASSERT_FALSE(committed.ok());
  EXPECT_EQ(committed.status().code(), absl::StatusCode::kUnavailable) << committed.status();
  for (const std::string part :
       {"reconnect_deadline of 1.5s", "(Commit kept failing)", "3 recorded batches",
        "cannot write /data/m.qcalstate.tmp: write: No space left on device"}) {
    EXPECT_NE(committed.status().message().find(part), std::string::npos)
        << part << " in " << committed.status();
  }
  EXPECT_GE(disk.commits.load(), 2);  // retried
  // The applied batches count, the unconfirmed ones are dropped with the session.
  SessionStats stats = session->Stats();
  EXPECT_EQ(stats.applied_batches, 3);
  EXPECT_EQ(stats.dropped_batches, 0);
  EXPECT_EQ(stats.queued_bytes, 0u);

  // Record() on a full queue: the sender commits to free it, which keeps failing.
  absl::Status recorded;
  int recorded_batches = 0;
  for (; recorded_batches < 100 && recorded.ok(); ++recorded_batches) {
    recorded = session->Record(kQuantizer, View(values));
  }
  EXPECT_EQ(recorded.code(), absl::StatusCode::kUnavailable) << recorded;
  EXPECT_NE(recorded.message().find("No space left on device"), std::string::npos) << recorded;
  EXPECT_LT(recorded_batches, 100);
  absl::StatusOr<server::ModelInfo> info = core.GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->quantizers.at(0).stats.batches, session->Stats().applied_batches);
  frontend.Stop();
}

}  // namespace
}  // namespace qcal
