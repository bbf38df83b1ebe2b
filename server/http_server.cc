#include "server/http_server.h"

#include <CivetServer.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace qcal::server {
namespace {

constexpr char kAllowed[] = "GET, HEAD";

// Sends status, headers and (unless `head`) the body.
void Respond(mg_connection* conn, int status, const std::string& content_type,
             const std::string& body, bool head, bool allow_header) {
  mg_response_header_start(conn, status);
  mg_response_header_add(conn, "Content-Type", content_type.c_str(), -1);
  const std::string length = std::to_string(body.size());
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  if (allow_header) mg_response_header_add(conn, "Allow", kAllowed, -1);
  mg_response_header_send(conn);
  if (!head) mg_write(conn, body.data(), body.size());
}

// Serves one path: GET and HEAD from `body`, every other method CivetServer dispatches (POST,
// PUT, DELETE, OPTIONS, PATCH) 405.
class EndpointHandler : public CivetHandler {
 public:
  EndpointHandler(std::string content_type, std::function<std::string()> body)
      : content_type_(std::move(content_type)), body_(std::move(body)) {}

  bool handleGet(CivetServer*, mg_connection* conn) override { return Ok(conn, false); }
  // HEAD computes the body too, so that Content-Length is the one GET would send.
  bool handleHead(CivetServer*, mg_connection* conn) override { return Ok(conn, true); }
  bool handlePost(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handlePut(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handleDelete(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handleOptions(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }
  bool handlePatch(CivetServer*, mg_connection* conn) override { return NotAllowed(conn); }

 private:
  bool Ok(mg_connection* conn, bool head) {
    Respond(conn, 200, content_type_, body_(), head, /*allow_header=*/false);
    return true;
  }
  static bool NotAllowed(mg_connection* conn) {
    Respond(conn, 405, "text/plain; charset=utf-8",
            absl::StrCat("method ", mg_get_request_info(conn)->request_method,
                         " is not allowed; use ", kAllowed, "\n"),
            /*head=*/false, /*allow_header=*/true);
    return true;
  }

  const std::string content_type_;
  const std::function<std::string()> body_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    absl::string_view listen, std::shared_ptr<prometheus::Registry> registry) {
  std::unique_ptr<HttpServer> http(new HttpServer());
  http->metrics_handler_ = std::make_unique<EndpointHandler>(
      "text/plain; version=0.0.4; charset=utf-8", [registry = std::move(registry)] {
        return prometheus::TextSerializer().Serialize(registry->Collect());
      });
  http->health_handler_ =
      std::make_unique<EndpointHandler>("text/plain; charset=utf-8", [] { return "ok\n"; });
  const std::vector<std::string> options = {
      "listening_ports",    std::string(listen),
      "num_threads",        std::to_string(kHttpThreads),
      "request_timeout_ms", std::to_string(kHttpRequestTimeoutMs)};
  try {
    http->server_ = std::make_unique<CivetServer>(options);
  } catch (const CivetException&) {
    // civetweb's own text ("null context when constructing CivetServer") says nothing useful;
    // its constructor fails this way when the port cannot be bound.
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on '", listen, "': invalid address or port in use"));
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
