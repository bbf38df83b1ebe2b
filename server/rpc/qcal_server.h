// A running qcal-server: the gRPC service, the optional HTTP server (/metrics, /healthz), the
// core and the metrics, wired together. main() and the in-process tests both start it this way.
//
//   QCAL_ASSIGN_OR_RETURN(auto server, QcalServer::Start({.listen = "127.0.0.1:0"}));
//   std::cout << server->ReadyLine() << std::endl;
//   server->Wait();   // until Shutdown() from another thread
#ifndef QCAL_SERVER_RPC_QCAL_SERVER_H_
#define QCAL_SERVER_RPC_QCAL_SERVER_H_

#include <grpcpp/server.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/auth/tls_files.h"
#include "server/auth/token_authority.h"
#include "server/core/calibration_core.h"
#include "server/core/committer.h"
#include "server/core/disk_durability.h"
#include "server/core/metrics.h"
#include "server/dashboard/dashboard.h"
#include "server/device/calibrator.h"
#include "server/http/http_server.h"
#include "server/rpc/calibration_service.h"

namespace qcal::server {

struct ServerOptions {
  // gRPC address "HOST:PORT"; port 0 picks a free port.
  std::string listen = "127.0.0.1:50051";
  // HTTP address for /metrics and /healthz; empty means no HTTP server.
  std::string http_listen{};
  // Larger batches (and ONNX uploads) are refused with RESOURCE_EXHAUSTED.
  int64_t max_batch_bytes = int64_t{1} << 30;
  // Bytes that Record batches in flight may hold in all (each batch: its bytes plus, for a
  // dtype other than float32, its float32 decode scratch); a batch that does not fit waits, and
  // its stream is not read meanwhile. 0 means twice max_batch_bytes; otherwise >=
  // max_batch_bytes.
  int64_t max_inflight_bytes = 0;
  // How long such a batch may wait when its call has no deadline (then RESOURCE_EXHAUSTED);
  // >= 1.
  int max_inflight_wait_seconds = 60;
  // gRPC's limit on one received message; at least kMinMessageBytes.
  int max_message_bytes = 16 << 20;
  // Bounds on a model's state and responses: --max-channels (>= 1), --max-num-bins (1 ..
  // kMaxHistogramBins), --max-response-bytes (>= kMinResponseBytes), --max-quantizers-per-model
  // (>= 1). See model_limits.h.
  ModelLimits limits{};
  // Models the server may hold (--max-models); >= 1.
  int64_t max_models = 1024;
  // Calls the server runs at once, open Record streams included, each on a gRPC thread
  // (--max-concurrent-calls; concurrent_calls.h); kMinConcurrentCalls .. kMaxConcurrentCalls.
  int max_concurrent_calls = 1024;
  // Bytes of model state all models may hold (--max-state-bytes; README, "Limits"); 0: a quarter
  // of the memory the server may use (DefaultMaxStateBytes); otherwise >= kMinStateBytes.
  int64_t max_state_bytes = 0;
  // Models no call used for longer are deleted (--model-ttl); 0: never; otherwise >= 1.
  int64_t model_ttl_seconds = 0;
  // Record, UploadOnnx, LoadState and ExportOnnx streams that receive nothing that long are
  // ended (--stream-idle-seconds); 0: never.
  int64_t stream_idle_seconds = 600;
  // Where the calibrators run: "cpu", "cuda" (a GPU is required) or "auto" (the GPU when one can
  // be used, else the CPU); see device.h.
  std::string device = "cpu";
  // Layout of a new model's histograms when CreateModel leaves it unspecified
  // (--default-histogram-layout; README, "Same data, same amax").
  kernels::HistogramLayout default_histogram_layout = kernels::HistogramLayout::kMergeable;
  // Durable state (README, "What survives what"): one state file per model in this directory,
  // restored at start; empty: state in memory only.
  std::string data_dir{};
  // The most bytes the data dir's model files may take (--max-data-dir-bytes); 0: no limit.
  int64_t max_data_dir_bytes = 0;
  // Changed models are written every this many seconds (--commit-interval-seconds); >= 1.
  int commit_interval_seconds = 5;
  // Shutdown lets running calls finish for up to this long, then cancels them (--drain-seconds);
  // >= 0.
  int drain_seconds = 5;
  // TLS for gRPC and HTTP (--tls-cert, --tls-key, --tls-client-ca: PEM file paths; README,
  // "Security"); all empty: plaintext. client_ca set: mutual TLS.
  TlsPaths tls{};
  // --auth-tokens: the bearer token file (auth/token_file.h); empty: no tokens, every call
  // allowed.
  std::string auth_tokens{};
  // Tests only: CoreOptions::before_amax_for_testing.
  std::function<void(const std::function<bool()>& cancelled)> before_amax_for_testing{};
};

// The smallest --max-message-bytes: clients send Record, UploadOnnx and ExportOnnx data in 4 MiB
// chunks, plus the message's other fields (names, header); a smaller limit refuses them all.
inline constexpr int kMinMessageBytes = (4 << 20) + (64 << 10);

// The smallest --max-response-bytes: any single quantizer's table entry, histogram (at the
// default bins) or model info fits in it.
inline constexpr int64_t kMinResponseBytes = int64_t{1} << 20;

// The smallest --max-state-bytes other than 0: room for a model with a few quantizers.
inline constexpr int64_t kMinStateBytes = int64_t{1} << 20;

// --max-state-bytes when it is 0: a quarter of MemoryAvailableToProcess() (the rest is for
// batches in flight, the copies a SaveState or amax search makes, gRPC and the OS), or 4 GiB when
// that cannot be read; never below kMinStateBytes.
int64_t DefaultMaxStateBytes();

// INVALID_ARGUMENT, naming the flag (--listen, --http-listen, --max-batch-bytes,
// --max-inflight-bytes, --max-inflight-wait-seconds, --max-message-bytes, --max-channels,
// --max-num-bins, --max-response-bytes, --max-data-dir-bytes, --commit-interval-seconds,
// --drain-seconds, --max-quantizers-per-model, --max-models, --max-concurrent-calls,
// --max-state-bytes, --model-ttl, --stream-idle-seconds) and the rule, for an address that is not
// HOST:PORT, max_batch_bytes < 1, a max_inflight_bytes other than 0 below max_batch_bytes,
// max_inflight_wait_seconds < 1, max_message_bytes < kMinMessageBytes, max_channels < 1,
// max_num_bins outside 1..kMaxHistogramBins, max_response_bytes below kMinResponseBytes,
// max_data_dir_bytes < 0 (or > 0 without data_dir), commit_interval_seconds < 1,
// drain_seconds < 0, max_quantizers or max_models < 1, max_concurrent_calls outside
// kMinConcurrentCalls..kMaxConcurrentCalls, max_state_bytes other than 0 below
// kMinStateBytes, or a negative model_ttl_seconds or stream_idle_seconds. The device name is
// SelectDevice's to check.
absl::Status ValidateServerOptions(const ServerOptions& options);

// max_inflight_bytes, with 0 resolved to twice max_batch_bytes (saturating).
int64_t InflightBytesLimit(const ServerOptions& options);

class QcalServer {
 public:
  // ValidateServerOptions' errors; UNAVAILABLE "cannot listen on HOST:PORT: invalid address or
  // port in use" when the gRPC port cannot be bound (HttpServer::Start's errors for HTTP);
  // SelectDevice's errors for a bad device name or --device cuda without a usable GPU
  // (UNAVAILABLE "no CUDA device: ..."); DataDir::Open's for data_dir (FAILED_PRECONDITION when
  // another server holds it). With data_dir, every model file is loaded (refused ones are logged
  // and left in place) before the server takes calls.
  // LoadTlsMaterial's and TokenAuthority::FromFile's INVALID_ARGUMENT naming the flag and the
  // file.
  static absl::StatusOr<std::unique_ptr<QcalServer>> Start(const ServerOptions& options);

  // Shuts down (as Shutdown) if still running.
  ~QcalServer();
  QcalServer(const QcalServer&) = delete;
  QcalServer& operator=(const QcalServer&) = delete;

  // "HOST:PORT" with the port actually bound.
  const std::string& grpc_address() const { return grpc_address_; }
  // Empty when HTTP is off.
  const std::string& http_address() const { return http_address_; }
  // "qcal-server listening on HOST:PORT http HOST:PORT" ("http off" without HTTP).
  std::string ReadyLine() const;

  CalibrationCore& core() { return *core_; }
  // The device the calibrators run on.
  const CalibratorBackend& device() const { return *device_; }

  // What the standard health service (grpc.health.v1.Health, open to every caller) answers, for
  // the whole server ("") and for "qcal.v1.Calibration": SERVING from Start, NOT_SERVING once
  // Shutdown begins (or after SetServing(false)).
  void SetServing(bool serving);

  // SIGHUP: reads the --auth-tokens file again (TokenAuthority::Reload); on an error the old
  // tokens stay and the error is returned. FAILED_PRECONDITION without --auth-tokens.
  absl::Status ReloadTokens();

  // Drains: reports NOT_SERVING (SetServing(false)), new Record streams are refused
  // (UNAVAILABLE), running calls get drain_seconds to finish and are cancelled after that; then,
  // with a data dir, every changed model is written (logged), and HTTP stops. Idempotent.
  void Shutdown();
  // OK, or why the final commit of Shutdown failed (the models it could not write keep their
  // previous files).
  absl::Status shutdown_status() const { return shutdown_status_; }
  // Blocks until Shutdown.
  void Wait();

 private:
  QcalServer() = default;

  // Declared in dependency order: destroyed from the bottom up.
  std::shared_ptr<const CalibratorBackend> device_;
  std::unique_ptr<Metrics> metrics_;
  // Null without a data dir; the committer runs on it and the core commits through it.
  std::unique_ptr<DiskDurability> durability_;
  std::unique_ptr<CalibrationCore> core_;
  std::unique_ptr<Committer> committer_;
  std::unique_ptr<TokenAuthority> tokens_;
  std::unique_ptr<CalibrationService> service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  // Its pages are served by http_.
  std::unique_ptr<Dashboard> dashboard_;
  std::unique_ptr<HttpServer> http_;
  std::string grpc_address_;
  std::string http_address_;
  absl::Duration drain_ = absl::Seconds(5);
  bool shut_down_ = false;
  absl::Status shutdown_status_;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_RPC_QCAL_SERVER_H_
