#include "server/rpc/concurrent_calls.h"

#include <grpcpp/resource_quota.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace qcal::server {
namespace {

// What gRPC's sync server sends for a call it has no thread for (grpc 1.51,
// src/cpp/server/server_cc.cc, kServerThreadpoolExhausted). No qcal handler sends this text.
constexpr char kGrpcThreadpoolExhausted[] = "Server Threadpool Exhausted";

// Rewrites that refusal's message and counts it; passes everything else through untouched.
class RefusalWording final : public grpc::experimental::Interceptor {
 public:
  RefusalWording(const std::string* message, Metrics* metrics)
      : message_(message), metrics_(metrics) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
          status.error_message() == kGrpcThreadpoolExhausted) {
        methods->ModifySendStatus(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, *message_));
        metrics_->CallRefused();
      }
    }
    methods->Proceed();
  }

 private:
  // Owned by the factory, which the server keeps; the server's metrics outlive it.
  const std::string* const message_;
  Metrics* const metrics_;
};

class RefusalWordingFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RefusalWordingFactory(std::string message, Metrics* metrics)
      : message_(std::move(message)), metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* /*info*/) override {
    return new RefusalWording(&message_, metrics_);  // gRPC owns it, for the call
  }

 private:
  const std::string message_;
  Metrics* const metrics_;
};

}  // namespace

std::string ConcurrentCallsMessage(int max_calls) {
  return absl::StrCat("qcal-server has no thread free for this call (--max-concurrent-calls ",
                      max_calls,
                      ": each call, an open Record stream too, holds one until it ends); retry "
                      "later, close streams you are done with, or raise --max-concurrent-calls");
}

void LimitConcurrentCalls(int max_calls, Metrics& metrics, grpc::ServerBuilder& builder) {
  // The arithmetic below holds for one completion queue with one poller kept: gRPC's thread
  // manager refuses a call when the thread that polled it was the last poller and the quota has
  // no thread for a new one, so max_calls threads run calls and one more polls.
  builder.SetSyncServerOption(grpc::ServerBuilder::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::MAX_POLLERS, 2);
  grpc::ResourceQuota quota("qcal-server");  // the builder keeps its own reference
  quota.SetMaxThreads(max_calls + 1);
  builder.SetResourceQuota(quota);
  // The server's only interceptor (SetInterceptorCreators replaces the list).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(
      std::make_unique<RefusalWordingFactory>(ConcurrentCallsMessage(max_calls), &metrics));
  builder.experimental().SetInterceptorCreators(std::move(creators));
}

}  // namespace qcal::server
