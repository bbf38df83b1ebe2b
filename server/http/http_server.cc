#include "server/http/http_server.h"

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"
#include "server/base/listen_check.h"
#include "spdlog/spdlog.h"

namespace qcal::server {
namespace {

constexpr char kAllowed[] = "GET, HEAD";
constexpr char kPlainText[] = "text/plain; charset=utf-8";
// The Prometheus text exposition format's media type.
constexpr char kPrometheusText[] = "text/plain; version=0.0.4; charset=utf-8";

// Queues the answer; libmicrohttpd adds Content-Length and, for HEAD, sends the headers only.
MHD_Result Respond(MHD_Connection* connection, unsigned status, const char* content_type,
                   const std::string& body, bool allow_header, const char* location = nullptr) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;  // Out of memory: libmicrohttpd closes the connection.
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  if (allow_header) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, kAllowed);
  if (location != nullptr) MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, location);
  const MHD_Result queued = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);  // The queued answer holds its own reference.
  return queued;
}

// The 404 answer.
MHD_Result NotFound(MHD_Connection* connection, absl::string_view path) {
  return Respond(connection, MHD_HTTP_NOT_FOUND, kPlainText,
                 absl::StrCat("no page at ", path, "; this server has /metrics and /healthz\n"),
                 /*allow_header=*/false);
}

// True when the connection's client presented a certificate that the daemon's trusted CAs
// (MHD_OPTION_HTTPS_MEM_TRUST) verify. libmicrohttpd only asks for one; checking is ours.
bool ClientCertificateVerified(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (info == nullptr || info->tls_session == nullptr) return false;
  unsigned int problems = 0;
  // GNUTLS_E_NO_CERTIFICATE_FOUND when the client sent none.
  if (gnutls_certificate_verify_peers2(static_cast<gnutls_session_t>(info->tls_session),
                                       &problems) != GNUTLS_E_SUCCESS) {
    return false;
  }
  return problems == 0;
}

// MHD_OPTION_UNESCAPE_CALLBACK that leaves the text as sent: pages get their path still
// percent-encoded (HttpPages), so a model name holding '/' (sent as %2F) stays one path segment.
size_t KeepEscaped(void* /*cls*/, MHD_Connection* /*connection*/, char* text) {
  return std::strlen(text);
}

}  // namespace

// The daemon's request handler (a friend of HttpServer, whose registry and security it reads).
struct HttpHandler {
  static MHD_Result Handle(void* cls, MHD_Connection* connection, const char* url,
                           const char* method, const char* version, const char* upload_data,
                           size_t* upload_data_size, void** request_state);
  // The answer to a request for /metrics or a page (`path`) that its TLS client certificate or
  // token does not allow; none when allowed.
  static std::optional<MHD_Result> Refuse(const HttpSecurity& security, absl::string_view path,
                                          MHD_Connection* connection);
};

std::optional<MHD_Result> HttpHandler::Refuse(const HttpSecurity& security, absl::string_view path,
                                              MHD_Connection* connection) {
  if (!security.client_ca_pem.empty() && !ClientCertificateVerified(connection)) {
    return Respond(
        connection, MHD_HTTP_FORBIDDEN, kPlainText,
        absl::StrCat(path, " needs a client certificate signed by the server's --tls-client-ca\n"),
        /*allow_header=*/false);
  }
  if (!security.metrics_access) return std::nullopt;
  const char* header =
      MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  const absl::Status allowed = security.metrics_access(path, header == nullptr ? "" : header);
  if (allowed.ok()) return std::nullopt;
  const std::string body = absl::StrCat(allowed.message(), "\n");
  if (!absl::IsUnauthenticated(allowed)) {
    return Respond(connection, MHD_HTTP_FORBIDDEN, kPlainText, body, /*allow_header=*/false);
  }
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, kPlainText);
  MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
  const MHD_Result queued = MHD_queue_response(connection, MHD_HTTP_UNAUTHORIZED, response);
  MHD_destroy_response(response);
  return queued;
}

// Called on a polling thread once a request's headers are complete (never for a connection still
// sending them), then once per piece of body, then once more with none; `cls` the HttpServer.
MHD_Result HttpHandler::Handle(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char* /*version*/,
                               const char* /*upload_data*/, size_t* upload_data_size,
                               void** request_state) {
  const absl::string_view path(url);
  const auto* server = static_cast<const HttpServer*>(cls);
  const bool page = server->pages_.serves && server->pages_.serves(path);
  const bool known_path = path == "/metrics" || path == "/healthz" || page;
  if (std::strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      std::strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
    // Answered at once, so a body is never read: libmicrohttpd discards it and closes the
    // connection after the answer.
    if (!known_path) return NotFound(connection, path);
    return Respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED, kPlainText,
                   absl::StrCat("method ", method, " is not allowed; use ", kAllowed, "\n"),
                   /*allow_header=*/true);
  }
  // GET and HEAD are answered on the last call, once the whole request is read: an answer queued
  // on the first makes libmicrohttpd close the connection, and scrapers keep theirs alive.
  static char headers_read;
  if (*request_state == nullptr) {
    *request_state = &headers_read;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    *upload_data_size = 0;  // A GET with a body: the body means nothing here.
    return MHD_YES;
  }
  if (!known_path) return NotFound(connection, path);
  // HEAD builds the body too, so that its Content-Length is the one GET would send.
  if (path == "/healthz") {
    return Respond(connection, MHD_HTTP_OK, kPlainText, "ok\n", /*allow_header=*/false);
  }
  if (std::optional<MHD_Result> refused = Refuse(server->security_, path, connection)) {
    return *refused;
  }
  if (page) {
    const HttpAnswer answer = server->pages_.answer(path);
    return Respond(connection, answer.status, answer.content_type.c_str(), answer.body,
                   /*allow_header=*/false,
                   answer.location.empty() ? nullptr : answer.location.c_str());
  }
  return Respond(connection, MHD_HTTP_OK, kPrometheusText,
                 prometheus::TextSerializer().Serialize(server->registry_->Collect()),
                 /*allow_header=*/false);
}

namespace {

// libmicrohttpd's messages (a connection limit reached, a failed accept) into the server's log.
void LogMhdMessage(void* /*cls*/, const char* format, va_list args) {
  char message[512];
  std::vsnprintf(message, sizeof(message), format, args);
  std::string_view text(message);
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  spdlog::warn("http: {}", text);
}

// kHttpConnectionLimit, or half the open file limit when that is lower.
unsigned ConnectionLimit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == RLIM_INFINITY) {
    return kHttpConnectionLimit;
  }
  return static_cast<unsigned>(
      std::clamp<rlim_t>(files.rlim_cur / 2, 1, rlim_t{kHttpConnectionLimit}));
}

// The port `fd` is bound to, or 0.
int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) return 0;
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    absl::string_view listen, std::shared_ptr<prometheus::Registry> registry, HttpSecurity security,
    HttpPages pages) {
  const bool tls = !security.cert_pem.empty();
  if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
    return absl::UnavailableError(absl::StrCat("cannot serve HTTPS on '", listen,
                                               "': this libmicrohttpd has no TLS support"));
  }
  absl::StatusOr<std::pair<std::string, int>> host_port = SplitHostPort(listen);
  if (!host_port.ok()) return host_port.status();
  // Bound here rather than by libmicrohttpd so that a name such as localhost works and a
  // failure says why, in the words of the gRPC port's.
  absl::StatusOr<int> fd = ListenSocket(host_port->first, host_port->second);
  if (!fd.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot serve HTTP on '", listen,
                                               "': invalid address or port in use (",
                                               fd.status().message(), ")"));
  }
  std::unique_ptr<HttpServer> http(
      new HttpServer(std::move(registry), std::move(security), std::move(pages)));
  http->port_ = BoundPort(*fd);
  // Internal polling threads with epoll: one wait covers every connection, idle or not, and a
  // thread only reads what has arrived (select would also cap descriptors at FD_SETSIZE).
  // One option and its values a line.
  // HTTPS options, terminated by MHD_OPTION_END (all of them when plain), passed on through
  // MHD_OPTION_ARRAY. Without a client CA there is no TRUST option, and GnuTLS asks no client
  // for a certificate.
  const HttpSecurity& held = http->security_;
  MHD_OptionItem tls_options[] = {
      {MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(held.cert_pem.c_str())},
      {MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(held.key_pem.c_str())},
      {MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char*>(held.client_ca_pem.c_str())},
      {MHD_OPTION_END, 0, nullptr}};
  if (held.client_ca_pem.empty()) tls_options[2] = {MHD_OPTION_END, 0, nullptr};
  if (!tls) tls_options[0] = {MHD_OPTION_END, 0, nullptr};
  // clang-format off
  http->daemon_ = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
          (tls ? MHD_USE_TLS : MHD_NO_FLAG), /*port=*/0,
      /*apc=*/nullptr, /*apc_cls=*/nullptr, &HttpHandler::Handle, http.get(),
      MHD_OPTION_EXTERNAL_LOGGER, &LogMhdMessage, nullptr,
      MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(*fd),
      MHD_OPTION_THREAD_POOL_SIZE, kHttpThreads,
      MHD_OPTION_CONNECTION_LIMIT, ConnectionLimit(),
      MHD_OPTION_CONNECTION_TIMEOUT, kHttpIdleTimeoutS,
      MHD_OPTION_UNESCAPE_CALLBACK, &KeepEscaped, nullptr,
      MHD_OPTION_ARRAY, tls_options,
      MHD_OPTION_END);
  // clang-format on
  if (http->daemon_ == nullptr) {
    close(*fd);  // MHD_stop_daemon closes it once the daemon runs; here nothing else will.
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on '", listen, "': libmicrohttpd did not start"));
  }
  return http;
}

HttpServer::~HttpServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

}  // namespace qcal::server
