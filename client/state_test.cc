// Client::SaveState / LoadState against an in-process service that implements only those two
// calls: how a state travels in pieces, and where errors come from.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "qcal/client.h"
#include "qcal/local_file.h"

namespace qcal {
namespace {

// SaveState streams `chunks` for model "m" (NOT_FOUND for others); LoadState keeps every message
// and answers with a ModelInfo named after the model of the first one, or with `load_error`.
class StateService final : public v1::Calibration::Service {
 public:
  std::vector<std::string> chunks;
  grpc::Status load_error = grpc::Status::OK;

  grpc::Status SaveState(grpc::ServerContext*, const v1::SaveStateRequest* request,
                         grpc::ServerWriter<v1::StateChunk>* writer) override {
    if (request->model() != "m") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("unknown model '", request->model(), "'"));
    }
    for (const std::string& piece : chunks) {
      v1::StateChunk chunk;
      chunk.set_data(piece);
      writer->Write(chunk);
    }
    return grpc::Status::OK;
  }

  grpc::Status LoadState(grpc::ServerContext*, grpc::ServerReader<v1::LoadStateRequest>* reader,
                         v1::ModelInfo* response) override {
    v1::LoadStateRequest message;
    std::vector<v1::LoadStateRequest> messages;
    while (reader->Read(&message)) messages.push_back(message);
    absl::MutexLock lock(&mu_);
    load_messages_ = messages;
    if (!load_error.ok()) return load_error;
    response->set_name(messages.empty() ? "" : messages.front().model());
    response->set_histogram_layout(v1::HISTOGRAM_LAYOUT_MERGEABLE);
    return grpc::Status::OK;
  }

  std::vector<v1::LoadStateRequest> load_messages() const {
    absl::MutexLock lock(&mu_);
    return load_messages_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<v1::LoadStateRequest> load_messages_;
};

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.SetMaxReceiveMessageSize(16 << 20);  // qcal-server's default
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Create(absl::StrCat("127.0.0.1:", port));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }
  void TearDown() override { server_->Shutdown(); }

  StateService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Client> client_;
};

// A state of `size` bytes that is not periodic in kMaxChunkBytes, so a piece sent twice or out of
// order would show.
std::string Pattern(size_t size) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 7919 + i / 4099) & 0xff);
  return bytes;
}

TEST_F(StateTest, SaveStateConcatenatesThePieces) {
  service_.chunks = {"qcal", "", std::string(1, '\0'), Pattern(5000)};
  absl::StatusOr<std::string> state = client_->SaveState("m");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, absl::StrCat("qcal", std::string(1, '\0'), Pattern(5000)));
}

TEST_F(StateTest, SaveStateKeepsTheServersError) {
  const absl::Status status = client_->SaveState("other").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "unknown model 'other'");
}

TEST_F(StateTest, LoadStateSendsPiecesOfAtMostTheChunkSizeWithModelAndMergeFirst) {
  const std::string state = Pattern(2 * kMaxChunkBytes + 123);
  absl::StatusOr<v1::ModelInfo> info = client_->LoadState("target", state, {.merge = true});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name(), "target");
  const std::vector<v1::LoadStateRequest> messages = service_.load_messages();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].model(), "target");
  EXPECT_TRUE(messages[0].merge());
  std::string received;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(messages[i].model(), "") << i;
      EXPECT_FALSE(messages[i].merge()) << i;
    }
    received += messages[i].data();
  }
  EXPECT_EQ(messages[0].data().size(), kMaxChunkBytes);
  EXPECT_EQ(messages[1].data().size(), kMaxChunkBytes);
  EXPECT_EQ(messages[2].data().size(), 123u);
  EXPECT_EQ(received, state);
}

TEST_F(StateTest, LoadStateOfNothingStillNamesTheModel) {
  ASSERT_TRUE(client_->LoadState("target", "").ok());
  const std::vector<v1::LoadStateRequest> messages = service_.load_messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].model(), "target");
  EXPECT_FALSE(messages[0].merge());
  EXPECT_EQ(messages[0].data(), "");
}

TEST_F(StateTest, LoadStateKeepsTheServersError) {
  service_.load_error = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "edges differ");
  const absl::Status status = client_->LoadState("m", "x", {.merge = true}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "edges differ");
}

TEST_F(StateTest, BadModelNamesAreRefusedBeforeSending) {
  EXPECT_EQ(client_->SaveState("").status().code(), absl::StatusCode::kInvalidArgument);
  const absl::Status status = client_->LoadState("a\nb", "x").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("model name"), std::string::npos) << status;
  EXPECT_TRUE(service_.load_messages().empty());
}

// A scratch directory, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "qcal_state_XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& bytes) const {
    const std::string path = (path_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::filesystem::path path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// LoadStateFile streams the file in the same pieces LoadState sends the bytes in (a file of an
// exact multiple of the piece size included), reading one piece at a time.
TEST_F(StateTest, LoadStateFileSendsTheFileInTheSamePieces) {
  ScratchDir dir;
  for (const size_t size : {2 * kMaxChunkBytes + 123, 2 * kMaxChunkBytes, size_t{0}}) {
    const std::string state = Pattern(size);
    const std::string path = dir.Write("s.qcalstate", state);
    absl::StatusOr<v1::ModelInfo> info = client_->LoadStateFile("target", path, {.merge = true});
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->name(), "target");
    // The service keeps the messages of the last call.
    const std::vector<v1::LoadStateRequest> messages = service_.load_messages();
    ASSERT_EQ(messages.size(), std::max<size_t>(1, (size + kMaxChunkBytes - 1) / kMaxChunkBytes))
        << size;
    EXPECT_EQ(messages[0].model(), "target");
    EXPECT_TRUE(messages[0].merge());
    std::string received;
    for (size_t i = 0; i < messages.size(); ++i) {
      if (i > 0) {
        EXPECT_EQ(messages[i].model(), "") << i;
      }
      EXPECT_LE(messages[i].data().size(), kMaxChunkBytes);
      received += messages[i].data();
    }
    EXPECT_EQ(received, state) << size;
  }
}

TEST_F(StateTest, LoadStateFileRefusesWhatIsNotARegularFileSendingNothing) {
  ScratchDir dir;
  const std::string fifo = (dir.path() / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  absl::Status status = client_->LoadStateFile("m", fifo).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(IsLocalFileError(status));
  EXPECT_EQ(status.message(), "cannot read '" + fifo + "': not a regular file");
  status = client_->LoadStateFile("m", dir.path().string()).status();
  EXPECT_EQ(status.message(),
            "cannot read '" + dir.path().string() + "': a directory, not a regular file");
  const std::string missing = (dir.path() / "nosuch").string();
  status = client_->LoadStateFile("m", missing).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_TRUE(IsLocalFileError(status));
  EXPECT_TRUE(service_.load_messages().empty());
}

}  // namespace
}  // namespace qcal
