// The HTTP side of qcal-server: one libmicrohttpd daemon for /metrics (Prometheus text format,
// from the Metrics registry), /healthz ("ok"), and the pages a caller adds (the dashboard,
// server/dashboard/). prometheus-cpp's Exposer serves only /metrics and takes no other
// handlers, hence one server of our own for all.
//
//   QCAL_ASSIGN_OR_RETURN(auto http, HttpServer::Start("127.0.0.1:0", metrics.registry()));
//   http->port();   // the port picked
//
// Every path served answers GET and HEAD (HEAD with GET's headers, Content-Length included, and
// no body), and every other method with 405, "Allow: GET, HEAD" and the body "method X is not
// allowed; use GET, HEAD\n"; other paths answer 404. Paths reach the pages as sent, still
// percent-encoded, so that a page can split them at '/' before decoding (model names hold '/').
//
// Idle connections cannot starve the server (issue 8): the daemon's threads poll every connection
// with epoll and only read what has arrived, so a connection that sends nothing, or half a request,
// costs a file descriptor and a buffer, not a thread. A thread-per-connection server (civetweb,
// before) let 16 idle sockets hold all 16 workers, and Kubernetes restarted a healthy server whose
// /healthz probes timed out. What still bounds it: kHttpConnectionLimit connections at once (past
// it new ones, probes too, wait in the kernel's accept queue until one closes), each closed after
// kHttpIdleTimeoutS seconds without a byte.
#ifndef QCAL_SERVER_HTTP_HTTP_SERVER_H_
#define QCAL_SERVER_HTTP_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "prometheus/registry.h"

struct MHD_Daemon;

namespace qcal::server {

// Connections open at once: far above what scrapers and probes use (a handful), and at
// libmicrohttpd's 32 KiB buffer each at most 64 MiB. Start lowers it to half the process's open
// file limit (RLIMIT_NOFILE) when that is smaller, so the gRPC side keeps descriptors.
inline constexpr unsigned kHttpConnectionLimit = 2048;
// Seconds a connection may stay silent before it is closed: above Prometheus's default scrape
// interval (60 s), so a scraper's keep-alive connection survives between scrapes, while abandoned
// sockets are still reclaimed.
inline constexpr unsigned kHttpIdleTimeoutS = 120;
// Polling threads, each with its own epoll set on the shared listening socket. A thread that is
// busy (serialising a large /metrics) does not accept, so a new connection (a /healthz probe) is
// taken by another: with four, three slow scrapes at once still leave one for probes. Serving
// is not CPU-bound, so more would mostly sit idle.
inline constexpr unsigned kHttpThreads = 4;

// HTTPS and who may read /metrics and the pages (README, "Security"). /healthz is always open:
// Kubernetes' probes send neither a client certificate nor a token.
struct HttpSecurity {
  // PEM; empty: plain HTTP. Otherwise HTTPS (GnuTLS, through libmicrohttpd) with this
  // certificate and key, which the caller has checked (auth/tls_files.h).
  std::string cert_pem;
  std::string key_pem;
  // PEM CA certificates; set (with cert_pem): the server asks every client for a certificate, and
  // /metrics and the pages answer 403 unless one signed by this CA was presented. /healthz does
  // not ask.
  std::string client_ca_pem;
  // Null: /metrics and the pages are open. Otherwise called with the path asked for ("/metrics",
  // or a page's) and the request's Authorization header ("" when absent): OK serves it,
  // UNAUTHENTICATED answers 401 (with "WWW-Authenticate: Bearer"), any other error 403; the
  // message is the body.
  std::function<absl::Status(absl::string_view path, absl::string_view authorization)>
      metrics_access;
};

// A page's answer to a GET.
struct HttpAnswer {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  // Set: sent as the Location header (a redirect).
  std::string location{};
};

// The pages besides /metrics and /healthz. Both are called on the daemon's threads, several at
// once, with the path of a GET or HEAD as sent (still percent-encoded, without the query).
struct HttpPages {
  // Whether the path is one of the pages' (cheap, no lookup): those that are answer other methods
  // with 405 and are guarded as /metrics is; the others are 404 before any access check.
  std::function<bool(absl::string_view path)> serves;
  // The answer to a GET of a path `serves` took (an error answer included, such as a JSON 404
  // for an unknown model).
  std::function<HttpAnswer(absl::string_view path)> answer;
};

class HttpServer {
 public:
  // Listens on `listen` ("HOST:PORT": an IPv4 address, a name such as localhost, or an IPv6
  // address in brackets; port 0 picks a free one) and serves until destroyed. The first of
  // HOST's addresses that binds is used.
  // INVALID_ARGUMENT (SplitHostPort's) when `listen` is not HOST:PORT; UNAVAILABLE "cannot serve
  // HTTP on 'LISTEN': invalid address or port in use (REASON)" when HOST does not resolve or no
  // address binds, REASON as ListenSocket's (listen_check.h), e.g. "127.0.0.1:9464: Address
  // already in use"; UNAVAILABLE "cannot serve HTTP on 'LISTEN': libmicrohttpd did not start"
  // (its reason logged) otherwise.
  // With security.cert_pem set: HTTPS; UNAVAILABLE "cannot serve HTTPS on 'LISTEN': this
  // libmicrohttpd has no TLS support" when the installed library lacks it.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      absl::string_view listen, std::shared_ptr<prometheus::Registry> registry,
      HttpSecurity security = {}, HttpPages pages = {});

  // Stops the daemon: its threads are joined and every connection closed.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port it listens on.
  int port() const { return port_; }

 private:
  HttpServer(std::shared_ptr<prometheus::Registry> registry, HttpSecurity security, HttpPages pages)
      : registry_(std::move(registry)), security_(std::move(security)), pages_(std::move(pages)) {}

  friend struct HttpHandler;

  // The daemon's handler reads them; they outlive the daemon (stopped first in the destructor),
  // which also keeps pointers to the PEM texts.
  const std::shared_ptr<prometheus::Registry> registry_;
  const HttpSecurity security_;
  const HttpPages pages_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_HTTP_HTTP_SERVER_H_
