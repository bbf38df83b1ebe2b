#include "server/http_server.h"

#include <CivetServer.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace qcal::server {
namespace {

bool Reply(mg_connection* conn, absl::string_view content_type, absl::string_view body) {
  mg_send_http_ok(conn, std::string(content_type).c_str(), static_cast<long long>(body.size()));
  mg_write(conn, body.data(), body.size());
  return true;
}

class MetricsHandler : public CivetHandler {
 public:
  explicit MetricsHandler(std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)) {}

  bool handleGet(CivetServer*, mg_connection* conn) override {
    const std::string body = prometheus::TextSerializer().Serialize(registry_->Collect());
    return Reply(conn, "text/plain; version=0.0.4; charset=utf-8", body);
  }

 private:
  const std::shared_ptr<prometheus::Registry> registry_;
};

class HealthHandler : public CivetHandler {
 public:
  bool handleGet(CivetServer*, mg_connection* conn) override {
    return Reply(conn, "text/plain; charset=utf-8", "ok\n");
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    absl::string_view listen, std::shared_ptr<prometheus::Registry> registry) {
  std::unique_ptr<HttpServer> http(new HttpServer());
  http->metrics_handler_ = std::make_unique<MetricsHandler>(std::move(registry));
  http->health_handler_ = std::make_unique<HealthHandler>();
  const std::vector<std::string> options = {"listening_ports", std::string(listen), "num_threads",
                                            "4"};
  try {
    http->server_ = std::make_unique<CivetServer>(options);
  } catch (const CivetException& error) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on '", listen, "': ", error.what()));
  }
  http->server_->addHandler("/metrics", http->metrics_handler_.get());
  http->server_->addHandler("/healthz", http->health_handler_.get());
  const std::vector<int> ports = http->server_->getListeningPorts();
  if (ports.empty() || ports.front() <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve HTTP on '", listen, "'"));
  }
  http->port_ = ports.front();
  return http;
}

HttpServer::~HttpServer() {
  if (server_ != nullptr) server_->close();
}

}  // namespace qcal::server
