// The HTTP side of qcal-server: one civetweb server for /metrics (Prometheus text format, from
// the Metrics registry) and /healthz ("ok"). prometheus-cpp's Exposer serves only /metrics and
// takes no other handlers, hence one server of our own for both.
//
//   QCAL_ASSIGN_OR_RETURN(auto http, HttpServer::Start("127.0.0.1:0", metrics.registry()));
//   http->port();   // the port picked
//
// Both paths answer GET and HEAD (200; HEAD with the headers only), and POST, PUT, DELETE,
// OPTIONS and PATCH with 405 and "Allow: GET, HEAD"; other paths are civetweb's 404. Idle
// connections cannot starve the server: kHttpThreads workers, and a connection that sends no
// complete request within kHttpRequestTimeoutMs is closed (civetweb's defaults would let a few idle
// sockets hold every worker for 30 s).
#ifndef QCAL_SERVER_HTTP_SERVER_H_
#define QCAL_SERVER_HTTP_SERVER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "prometheus/registry.h"

class CivetServer;
class CivetHandler;

namespace qcal::server {

// civetweb's num_threads: connections served at once (the rest wait in its queue).
inline constexpr int kHttpThreads = 16;
// civetweb's request_timeout_ms: how long a connection may take to send its request (and to
// take the response) before it is closed.
inline constexpr int kHttpRequestTimeoutMs = 5000;

class HttpServer {
 public:
  // Listens on `listen` ("HOST:PORT"; port 0 picks a free one) and serves until destroyed.
  // UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      absl::string_view listen, std::shared_ptr<prometheus::Registry> registry);

  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port it listens on.
  int port() const { return port_; }

 private:
  HttpServer() = default;

  // Declared in this order so the server stops before its handlers go away.
  std::unique_ptr<CivetHandler> metrics_handler_;
  std::unique_ptr<CivetHandler> health_handler_;
  std::unique_ptr<CivetServer> server_;
  int port_ = 0;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_HTTP_SERVER_H_
