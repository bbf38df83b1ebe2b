#include "server/rpc/qcal_server.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "server/base/listen_check.h"
#include "server/base/memory_size.h"
#include "server/base/status_util.h"
#include "server/device/device.h"
#include "server/rpc/call_auth.h"
#include "server/rpc/concurrent_calls.h"
#include "spdlog/spdlog.h"

namespace qcal::server {

absl::Status ValidateServerOptions(const ServerOptions& options) {
  QCAL_RETURN_IF_ERROR(Annotate(SplitHostPort(options.listen).status(), "--listen"));
  if (!options.http_listen.empty()) {
    QCAL_RETURN_IF_ERROR(Annotate(SplitHostPort(options.http_listen).status(), "--http-listen"));
  }
  if (options.max_batch_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-batch-bytes must be >= 1 (bytes), got ", options.max_batch_bytes));
  }
  if (options.max_inflight_bytes != 0 && options.max_inflight_bytes < options.max_batch_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-inflight-bytes (", options.max_inflight_bytes,
                     ") must be >= --max-batch-bytes (", options.max_batch_bytes,
                     "): a batch of the largest size must fit; 0 means twice --max-batch-bytes"));
  }
  if (options.max_inflight_wait_seconds < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--max-inflight-wait-seconds must be >= 1, got ",
                                                   options.max_inflight_wait_seconds));
  }
  if (options.max_message_bytes < kMinMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-message-bytes must be >= ", kMinMessageBytes,
        " (4 MiB + 64 KiB: clients send data in 4 MiB chunks plus the message's other fields), "
        "got ",
        options.max_message_bytes));
  }
  if (options.limits.max_channels < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-channels must be >= 1, got ", options.limits.max_channels));
  }
  if (options.limits.max_num_bins < 1 || options.limits.max_num_bins > kMaxHistogramBins) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-num-bins must be in 1..", kMaxHistogramBins, ", got ", options.limits.max_num_bins));
  }
  if (options.limits.max_response_bytes < kMinResponseBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-response-bytes must be >= ", kMinResponseBytes, " (1 MiB), got ",
                     options.limits.max_response_bytes));
  }
  if (options.limits.max_quantizers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--max-quantizers-per-model must be >= 1, got ",
                                                   options.limits.max_quantizers));
  }
  if (options.max_models < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-models must be >= 1, got ", options.max_models));
  }
  if (options.max_concurrent_calls < kMinConcurrentCalls ||
      options.max_concurrent_calls > kMaxConcurrentCalls) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-concurrent-calls must be in ", kMinConcurrentCalls, "..", kMaxConcurrentCalls,
        " (a client keeps its Record stream open while it makes other calls: it needs 2), got ",
        options.max_concurrent_calls));
  }
  if (options.max_state_bytes != 0 && options.max_state_bytes < kMinStateBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max-state-bytes must be >= ", kMinStateBytes,
                     " (1 MiB), or 0 for a quarter of the memory, got ", options.max_state_bytes));
  }
  if (options.model_ttl_seconds < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--model-ttl must be >= 0 (seconds; 0: never), got ", options.model_ttl_seconds));
  }
  if (options.stream_idle_seconds < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--stream-idle-seconds must be >= 0 (0: never), got ", options.stream_idle_seconds));
  }
  if (options.max_data_dir_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-data-dir-bytes must be >= 0 (0: no limit), got ", options.max_data_dir_bytes));
  }
  if (options.max_data_dir_bytes > 0 && options.data_dir.empty()) {
    return absl::InvalidArgumentError("--max-data-dir-bytes needs --data-dir");
  }
  if (options.commit_interval_seconds < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--commit-interval-seconds must be >= 1, got ",
                                                   options.commit_interval_seconds));
  }
  if (options.drain_seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--drain-seconds must be >= 0, got ", options.drain_seconds));
  }
  return absl::OkStatus();
}

int64_t DefaultMaxStateBytes() {
  const int64_t memory = MemoryAvailableToProcess();
  if (memory <= 0) return int64_t{4} << 30;
  return std::max(memory / 4, kMinStateBytes);
}

int64_t InflightBytesLimit(const ServerOptions& options) {
  if (options.max_inflight_bytes != 0) return options.max_inflight_bytes;
  return options.max_batch_bytes > std::numeric_limits<int64_t>::max() / 2
             ? std::numeric_limits<int64_t>::max()
             : 2 * options.max_batch_bytes;
}

namespace {

// The gRPC port's credentials: plaintext, TLS, or TLS that requires and verifies a client
// certificate signed by the client CA.
std::shared_ptr<grpc::ServerCredentials> GrpcCredentials(const std::optional<TlsMaterial>& tls) {
  if (!tls.has_value()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      tls->client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = tls->client_ca_pem;
  ssl.pem_key_cert_pairs.push_back({tls->key_pem, tls->cert_pem});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<QcalServer>> QcalServer::Start(const ServerOptions& options) {
  QCAL_RETURN_IF_ERROR(ValidateServerOptions(options));
  QCAL_ASSIGN_OR_RETURN(auto grpc_host_port, SplitHostPort(options.listen));
  // gRPC would log a raw error line and give no reason; say why here instead.
  if (const std::string problem = ListenProblem(grpc_host_port.first, grpc_host_port.second);
      !problem.empty()) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen,
                                               ": invalid address or port in use (", problem, ")"));
  }

  QCAL_ASSIGN_OR_RETURN(std::optional<TlsMaterial> tls, LoadTlsMaterial(options.tls));

  std::unique_ptr<QcalServer> server(new QcalServer());
  // First: a directory another server holds (or that is no directory) is refused before anything
  // else is set up.
  if (!options.data_dir.empty()) {
    QCAL_ASSIGN_OR_RETURN(
        std::unique_ptr<DataDir> dir,
        DataDir::Open({.path = options.data_dir, .max_bytes = options.max_data_dir_bytes}));
    server->durability_ = std::make_unique<DiskDurability>(std::move(dir));
  }
  if (!options.auth_tokens.empty()) {
    QCAL_ASSIGN_OR_RETURN(server->tokens_, TokenAuthority::FromFile(options.auth_tokens));
  }
  QCAL_ASSIGN_OR_RETURN(server->device_, SelectDevice(options.device));
  server->metrics_ = std::make_unique<Metrics>();
  server->metrics_->SetDevice(server->device_);
  server->drain_ = absl::Seconds(options.drain_seconds);
  server->core_ = std::make_unique<CalibrationCore>(
      CoreOptions{.max_batch_bytes = options.max_batch_bytes,
                  .max_inflight_bytes = InflightBytesLimit(options),
                  .max_inflight_wait = absl::Seconds(options.max_inflight_wait_seconds),
                  .backend = server->device_,
                  .default_histogram_layout = options.default_histogram_layout,
                  .limits = options.limits,
                  .max_models = options.max_models,
                  .max_state_bytes = options.max_state_bytes != 0 ? options.max_state_bytes
                                                                  : DefaultMaxStateBytes(),
                  .model_ttl = absl::Seconds(options.model_ttl_seconds),
                  .stream_idle = absl::Seconds(options.stream_idle_seconds),
                  .durability = server->durability_.get(),
                  .before_amax_for_testing = options.before_amax_for_testing},
      *server->metrics_);
  if (server->durability_ != nullptr) {
    // Before the port opens: no call sees a server without its models.
    const DiskDurability::RestoreSummary restored = server->durability_->Restore(*server->core_);
    spdlog::info(
        "--data-dir {}: restored {} models{} ({} bytes); changed models are written every {} s, "
        "on Commit and on SIGTERM",
        server->durability_->dir().path(), restored.restored,
        restored.refused > 0 ? absl::StrCat(", refused ", restored.refused, " (logged above)") : "",
        server->durability_->dir().bytes(), options.commit_interval_seconds);
    server->committer_ = std::make_unique<Committer>(
        *server->core_, *server->durability_, absl::Seconds(options.commit_interval_seconds));
  } else {
    spdlog::info(
        "no --data-dir: state lives in memory only; a restart loses every model (README, \"What "
        "survives what\")");
  }
  server->service_ = std::make_unique<CalibrationService>(*server->core_, server->tokens_.get());

  if (!options.http_listen.empty()) {
    QCAL_ASSIGN_OR_RETURN(auto http_host_port, SplitHostPort(options.http_listen));
    HttpSecurity security;
    if (tls.has_value()) {
      security.cert_pem = tls->cert_pem;
      security.key_pem = tls->key_pem;
      security.client_ca_pem = tls->client_ca_pem;
    }
    if (server->tokens_ != nullptr) {
      // /metrics labels series with every model's name: a token limited to a model prefix would
      // see other tenants' names, so only a token for all models may read it (any role).
      const TokenAuthority* tokens = server->tokens_.get();
      // The dashboard's pages show every model too: the same rule.
      security.metrics_access = [tokens](absl::string_view path,
                                         absl::string_view authorization) -> absl::Status {
        if (authorization.empty()) {
          return absl::UnauthenticatedError(absl::StrCat(
              path, " needs 'Authorization: Bearer TOKEN' (the server has --auth-tokens)"));
        }
        absl::StatusOr<absl::string_view> token = BearerToken(authorization);
        if (!token.ok()) return token.status();
        absl::StatusOr<Grant> grant = tokens->Authenticate(*token);
        if (!grant.ok()) return grant.status();
        if (!grant->model_prefix.empty()) {
          return absl::PermissionDeniedError(
              absl::StrCat(path, " names every model: it needs a token without a model prefix"));
        }
        return absl::OkStatus();
      };
    }
    server->dashboard_ = std::make_unique<Dashboard>(*server->core_);
    QCAL_ASSIGN_OR_RETURN(server->http_,
                          HttpServer::Start(options.http_listen, server->metrics_->registry(),
                                            std::move(security), server->dashboard_->Pages()));
    server->http_address_ = absl::StrCat(http_host_port.first, ":", server->http_->port());
  }

  // grpc.health.v1.Health, which gRPC serves itself (load balancers, Kubernetes probes). It is a
  // process-wide switch, read when the server is built.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, GrpcCredentials(tls), &port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  // A second server on a busy port must fail, not silently share the port's traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(server->service_.get());
  LimitConcurrentCalls(options.max_concurrent_calls, *server->metrics_, builder);
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, ": invalid address or port in use"));
  }
  server->grpc_address_ = absl::StrCat(grpc_host_port.first, ":", port);
  server->SetServing(true);
  spdlog::info(
      "serving gRPC on {}{}; calibrators on {} ({}); {}; {}", server->grpc_address_,
      server->http_address_.empty() ? "" : absl::StrCat(", HTTP on ", server->http_address_),
      server->device_->device(), server->device_->device_name(),
      !tls.has_value()             ? "plaintext (no --tls-cert)"
      : tls->client_ca_pem.empty() ? "TLS"
                                   : "mutual TLS (clients need a certificate of --tls-client-ca)",
      server->tokens_ == nullptr
          ? "no bearer tokens (no --auth-tokens): every caller may call everything"
          : absl::StrCat(server->tokens_->size(), " bearer tokens from --auth-tokens"));
  spdlog::info(
      "limits: --max-models {}, --max-quantizers-per-model {}, --max-state-bytes {}{}, "
      "--max-concurrent-calls {}",
      options.max_models, options.limits.max_quantizers,
      server->core_->state_budget().limit_bytes(),
      options.max_state_bytes == 0 ? " (a quarter of the memory)" : "",
      options.max_concurrent_calls);
  return server;
}

QcalServer::~QcalServer() { Shutdown(); }

absl::Status QcalServer::ReloadTokens() {
  if (tokens_ == nullptr) {
    return absl::FailedPreconditionError("no --auth-tokens file to reload");
  }
  QCAL_RETURN_IF_ERROR(tokens_->Reload());
  spdlog::info("reloaded --auth-tokens file '{}': {} tokens", tokens_->path(), tokens_->size());
  return absl::OkStatus();
}

std::string QcalServer::ReadyLine() const {
  return absl::StrCat("qcal-server listening on ", grpc_address_, " http ",
                      http_address_.empty() ? "off" : http_address_);
}

void QcalServer::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health =
      grpc_server_ != nullptr ? grpc_server_->GetHealthCheckService() : nullptr;
  if (health == nullptr) return;
  if (!serving) {
    health->SetServingStatus(false);  // every service name, "" included
    return;
  }
  health->SetServingStatus("", true);
  health->SetServingStatus(v1::Calibration::service_full_name(), true);
}

void QcalServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  SetServing(false);
  if (grpc_server_ != nullptr) {
    // Running calls get drain_ to finish; open streams are cancelled after that. gRPC's own
    // Shutdown(deadline) also waits out the deadline for client connections that are merely
    // open (every client keeps one), so wait for the calls here and then shut down at once.
    core_->BeginDrain();
    spdlog::info("draining: {} calls in flight, up to {}", metrics_->rpcs_in_flight(),
                 absl::FormatDuration(drain_));
    const absl::Time deadline = absl::Now() + drain_;
    while (metrics_->rpcs_in_flight() > 0 && absl::Now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (metrics_->rpcs_in_flight() > 0) {
      spdlog::warn("drain: {} calls still running after {}; cancelling them",
                   metrics_->rpcs_in_flight(), absl::FormatDuration(drain_));
    }
    // Returns once every handler has returned: nothing changes a model after this.
    grpc_server_->Shutdown(std::chrono::system_clock::now());
  }
  if (committer_ != nullptr) committer_->Stop();
  // A start that failed after the data dir opened (e.g. --device cuda without a GPU) has no core.
  if (durability_ != nullptr && core_ != nullptr) {
    const DiskDurability::CommitSummary summary = durability_->CommitAll(core_->Models());
    spdlog::info("--data-dir {}: committed {} changed models{}{}", durability_->dir().path(),
                 summary.written.size(), summary.written.empty() ? "" : ": ",
                 absl::StrJoin(summary.written, ", ", [](std::string* out, const std::string& n) {
                   absl::StrAppend(out, "'", n, "'");
                 }));
    for (const absl::Status& failure : summary.failed) {
      spdlog::error("--data-dir: final commit failed: {}", std::string(failure.message()));
    }
    if (!summary.failed.empty()) {
      shutdown_status_ = absl::UnavailableError(absl::StrCat(
          summary.failed.size(), " models could not be written at shutdown; the first: ",
          summary.failed.front().message()));
    }
  }
  if (http_ != nullptr) http_.reset();
}

void QcalServer::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

}  // namespace qcal::server
