// qcal-server: the calibration service (see ../shared/DESIGN.md).
//
//   qcal-server --listen 127.0.0.1:50051 --http-listen 127.0.0.1:9464 --device auto
//
// Once ready it prints exactly one line to stdout,
//   qcal-server listening on HOST:PORT http HOST:PORT     (or "http off")
// with the ports actually bound (port 0 picks a free one); logs go to stderr. SIGINT or SIGTERM
// shut it down gracefully: a drain of --drain-seconds, then, with --data-dir, a commit of every
// changed model; exit 0 (1 when that commit failed).
// SIGHUP reloads the --auth-tokens file (README, "Security").
#include <malloc.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "server/integer_flag.h"
#include "server/rpc/qcal_server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

struct Flags {
  qcal::server::ServerOptions server;
  // qcal-server picks the GPU when it can (ServerOptions, for embedders, defaults to the CPU).
  std::string device = "auto";
  std::string log_level = "info";
  std::string default_histogram_layout = "mergeable";
};

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{"qcal-server: quantization calibration service (gRPC, Prometheus /metrics)"};
  app.add_option("--listen", flags.server.listen, "gRPC address HOST:PORT; port 0 picks one")
      ->capture_default_str();
  app.add_option("--http-listen", flags.server.http_listen,
                 "HTTP address HOST:PORT for /metrics, /healthz and the dashboard (/dashboard); "
                 "empty: no HTTP");
  // The limits are checked by QcalServer::Start (ValidateServerOptions), whose messages say the
  // rule; CLI11's range check would print "Value 0 not in range 0.000000 to 1.797e308".
  // IntegerFlag refuses text that does not fit the type (CLI11 would saturate it) as a usage
  // error: every integer flag takes it.
  app.add_option("--max-batch-bytes", flags.server.max_batch_bytes,
                 "largest Record batch (and ONNX model sent) accepted, in bytes; >= 1")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.max_batch_bytes)>());
  app.add_option("--max-inflight-bytes", flags.server.max_inflight_bytes,
                 "bytes that Record batches in flight may hold in all (a batch's bytes, plus its "
                 "float32 decode scratch for other dtypes); a batch that does not fit waits, its "
                 "stream unread; >= --max-batch-bytes; 0: twice --max-batch-bytes")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.max_inflight_bytes)>());
  app.add_option("--max-inflight-wait-seconds", flags.server.max_inflight_wait_seconds,
                 "how long a Record batch may wait for --max-inflight-bytes when its call has no "
                 "deadline (with one: until shortly before it), then RESOURCE_EXHAUSTED; >= 1")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.max_inflight_wait_seconds)>());
  app.add_option("--max-message-bytes", flags.server.max_message_bytes,
                 "largest gRPC message received, in bytes; >= 4 MiB + 64 KiB (4259840)")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.max_message_bytes)>());
  app.add_option("--max-channels", flags.server.limits.max_channels,
                 "most channels a per-channel max calibrator may keep; >= 1")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.limits.max_channels)>());
  app.add_option("--max-num-bins", flags.server.limits.max_num_bins,
                 "most bins a histogram may start with (QuantizerSpec.num_bins); 1..16777216")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.limits.max_num_bins)>());
  app.add_option("--max-response-bytes", flags.server.limits.max_response_bytes,
                 "largest response built (amax tables, histograms, model lists), in bytes; "
                 ">= 1 MiB; qcal's clients accept 256 MiB")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.limits.max_response_bytes)>());
  app.add_option("--max-quantizers-per-model", flags.server.limits.max_quantizers,
                 "most quantizers one model may hold (declared, or created by Record, partial "
                 "states or a LoadState merge); >= 1")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.limits.max_quantizers)>());
  app.add_option("--max-models", flags.server.max_models, "most models the server holds; >= 1")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.max_models)>());
  app.add_option("--max-concurrent-calls", flags.server.max_concurrent_calls,
                 "most calls the server runs at once, each on a thread (an open Record stream "
                 "counts until it closes; grpc.health.v1 does not); one more is refused with "
                 "RESOURCE_EXHAUSTED; 2..1048576")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.max_concurrent_calls)>());
  app.add_option("--max-state-bytes", flags.server.max_state_bytes,
                 "bytes that all models may hold in calibration state, stored amax tables and "
                 "ONNX models (README, \"Limits\"); 0: a quarter of the memory the server may "
                 "use (physical, or its cgroup's limit)")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.max_state_bytes)>());
  app.add_option("--model-ttl", flags.server.model_ttl_seconds,
                 "seconds after which a model that no call used is deleted (logged); 0: never")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.model_ttl_seconds)>());
  app.add_option("--stream-idle-seconds", flags.server.stream_idle_seconds,
                 "a Record, UploadOnnx, LoadState or ExportOnnx stream that receives nothing this "
                 "long is ended by the server (CANCELLED; qcal's clients reopen a Record stream "
                 "when they next send); 0: never")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.stream_idle_seconds)>());
  app.add_option("--device", flags.device,
                 "where calibration runs: cuda (a GPU is required), cpu, or auto (the GPU when "
                 "one can be used)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--default-histogram-layout", flags.default_histogram_layout,
                 "layout of a new model's histograms when CreateModel leaves it unspecified: "
                 "mergeable (bins of width 2^k: any order, batching or split gives the same "
                 "amax, and states merge) or reference (pytorch-quantization's bins, bit for bit)")
      ->capture_default_str()
      ->check(CLI::IsMember({"mergeable", "reference"}));
  app.add_option("--data-dir", flags.server.data_dir,
                 "directory of durable state: one state file per model, restored at start, "
                 "written every --commit-interval-seconds, on Commit and on SIGTERM; empty: "
                 "state in memory only (README, \"What survives what\")");
  app.add_option("--max-data-dir-bytes", flags.server.max_data_dir_bytes,
                 "most bytes the --data-dir model files may take together; a write past it fails "
                 "(RESOURCE_EXHAUSTED) and keeps the previous file; 0: no limit")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.max_data_dir_bytes)>());
  app.add_option("--commit-interval-seconds", flags.server.commit_interval_seconds,
                 "with --data-dir, changed models are written this often; a kill -9 loses at most "
                 "what was applied since; >= 1")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.commit_interval_seconds)>());
  app.add_option("--drain-seconds", flags.server.drain_seconds,
                 "on SIGTERM or SIGINT, how long running calls may finish (new Record streams are "
                 "refused) before they are cancelled and the state is committed; >= 0")
      ->capture_default_str()
      ->check(qcal::server::IntegerFlag<decltype(flags.server.drain_seconds)>());
  app.add_option("--tls-cert", flags.server.tls.cert,
                 "PEM certificate (chain) of the server: gRPC and HTTP serve TLS; with --tls-key");
  app.add_option("--tls-key", flags.server.tls.key, "PEM private key of --tls-cert (unencrypted)");
  app.add_option("--tls-client-ca", flags.server.tls.client_ca,
                 "PEM CA certificates: mutual TLS, gRPC clients must present a certificate it "
                 "signed (HTTP: /metrics and the dashboard)");
  app.add_option("--auth-tokens", flags.server.auth_tokens,
                 "bearer token file, 'ROLE TOKEN [MODEL_PREFIX]' a line; SIGHUP reloads it; "
                 "empty: no tokens, every caller may call everything");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error, critical, off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(error);
    // Exit 2 for every usage error (CLI11 would use its own codes, 100 and up), as qcal does.
    std::cerr << "qcal-server: usage: " << error.what() << " (see 'qcal-server --help')\n";
    return 2;
  }
  // An empty --data-dir (an unset $VAR in a unit file) would quietly mean memory only.
  if (app.count("--data-dir") > 0 && flags.server.data_dir.empty()) {
    std::cerr << "qcal-server: --data-dir is empty; name a directory, or leave the flag out to "
                 "keep state in memory only\n";
    return 1;
  }

  // stdout carries only the ready line.
  spdlog::set_default_logger(spdlog::stderr_color_mt("qcal-server"));
  spdlog::set_level(spdlog::level::from_str(flags.log_level));

  flags.server.device = flags.device;
  flags.server.default_histogram_layout = flags.default_histogram_layout == "reference"
                                              ? qcal::kernels::HistogramLayout::kReference
                                              : qcal::kernels::HistogramLayout::kMergeable;

  // Record batches arrive as multi-MiB gRPC read buffers and protobuf strings that are freed
  // after each message. By default glibc hands such memory back to the kernel and the next
  // message faults it in again, zero-filled: a fifth of the server's CPU time at loopback
  // ingest. Serve them from the heap and keep up to 256 MiB of freed memory mapped.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  // That kept memory is given back once no Record stream has run for a while (IdleTrimmer:
  // malloc_trim). malloc_trim returns all free pages of the main arena but only the free chunks
  // of the per-thread arenas (glibc makes up to 8 per core), whose tops, under the threshold
  // above, stay mapped: about 14 MiB each after 64 streams. Two arenas bound that and measured
  // no slower: the server makes few, large allocations per byte it takes in. Set before any
  // thread starts.
  mallopt(M_ARENA_MAX, 2);

  // Block the shutdown signals (and SIGHUP, the token reload) before any thread starts, so every
  // thread inherits the mask and sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A write past a file-size limit (ulimit -f) must fail with EFBIG, which --data-dir reports and
  // survives, rather than kill the server.
  signal(SIGXFSZ, SIG_IGN);

  absl::StatusOr<std::unique_ptr<qcal::server::QcalServer>> server =
      qcal::server::QcalServer::Start(flags.server);
  if (!server.ok()) {
    std::cerr << "qcal-server: " << server.status().message() << "\n";
    return 1;
  }
  std::cout << (*server)->ReadyLine() << std::endl;

  int received = 0;
  // SIGHUP reloads the tokens and keeps serving: calls in flight keep their grant, new calls see
  // the new table, and a file that fails to load leaves the old table in force.
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    if (absl::Status reloaded = (*server)->ReloadTokens(); absl::IsFailedPrecondition(reloaded)) {
      spdlog::info("SIGHUP: nothing to reload ({})", std::string(reloaded.message()));
    } else if (!reloaded.ok()) {
      spdlog::error("SIGHUP: tokens not reloaded, the previous ones stay in force: {}",
                    std::string(reloaded.message()));
    }
  }
  spdlog::info("signal {}: shutting down", received);
  (*server)->Shutdown();
  (*server)->Wait();
  if (const absl::Status status = (*server)->shutdown_status(); !status.ok()) {
    spdlog::error("stopped; {}", std::string(status.message()));
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}
