// --max-concurrent-calls: the bound on calls the server runs at once. The server uses gRPC's
// synchronous API, so every call (a Record stream for as long as it is open, too) holds one
// thread of gRPC's sync thread pool; the bound is gRPC's own, a ResourceQuota whose thread count
// the pool may not pass (README, "Limits").
//
//   grpc::ServerBuilder builder;
//   LimitConcurrentCalls(options.max_concurrent_calls, metrics, builder);
//
// Past the bound gRPC itself answers the new call, before any handler runs (so it changes no
// state), with RESOURCE_EXHAUSTED "Server Threadpool Exhausted" (grpc 1.51,
// src/cpp/thread_manager/thread_manager.cc: the thread that polled it finds no spare thread
// and runs the sync server's ResourceExhaustedHandler instead of the method). An interceptor
// replaces that text with ConcurrentCallsMessage, which names the flag, and counts the refusal
// (qcal_calls_refused_total).
//
// What shares the pool: every method of qcal.v1.Calibration. grpc.health.v1.Health does not:
// gRPC 1.51's default health service uses the callback API, served by gRPC's own threads, so a
// probe is answered while the pool is full.
#ifndef QCAL_SERVER_RPC_CONCURRENT_CALLS_H_
#define QCAL_SERVER_RPC_CONCURRENT_CALLS_H_

#include <grpcpp/server_builder.h>

#include <string>

#include "server/core/metrics.h"

namespace qcal::server {

// The smallest --max-concurrent-calls: qcal's clients keep a model's Record stream open from its
// first record to its flush and may make other calls meanwhile, so one client needs two.
inline constexpr int kMinConcurrentCalls = 2;
// The largest: well beyond the threads Linux lets one process start (kernel.threads-max,
// pid_max at most 4194304), and far from int's limit, to which the poller thread is added.
inline constexpr int kMaxConcurrentCalls = 1 << 20;

// The message of a call refused at the bound (or when the OS refused gRPC a new thread, which
// gRPC answers the same way):
//   "qcal-server has no thread free for this call (--max-concurrent-calls 2: each call, an open
//   Record stream too, holds one until it ends); retry later, close streams you are done with,
//   or raise --max-concurrent-calls"
std::string ConcurrentCallsMessage(int max_calls);

// Bounds the sync server that `builder` builds to `max_calls` (kMinConcurrentCalls ..
// kMaxConcurrentCalls, checked by ValidateServerOptions) calls at once: one completion queue,
// one polling thread kept free (it takes the next call and refuses it when no other thread is
// left), so max_calls + 1 threads in all; and the interceptor that words and counts the refusal
// (`metrics` must outlive the server built).
// A call that starts the instant another ends can be refused as well: the ended call's thread
// counts until it is back in the pool (a moment after its client sees the status).
void LimitConcurrentCalls(int max_calls, Metrics& metrics, grpc::ServerBuilder& builder);

}  // namespace qcal::server

#endif  // QCAL_SERVER_RPC_CONCURRENT_CALLS_H_
