// HttpServer over real loopback sockets: the answers by path and method, the bound port and
// the reasons a start fails, and that idle connections leave /healthz answering (issue 8).
#include "server/http/http_server.h"

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace qcal::server {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Seconds a test waits for an answer: far above what one takes, so only a server that does not
// answer (one whose workers idle connections hold) fails.
constexpr int kAnswerTimeoutS = 10;

// A connected socket to `host`:`port` (the first of its addresses that accepts), or -1.
int Connect(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &addresses) != 0) return -1;
  int connected = -1;
  for (const addrinfo* a = addresses; a != nullptr && connected < 0; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    const timeval timeout{.tv_sec = kAnswerTimeoutS, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      connected = fd;
    } else {
      close(fd);
    }
  }
  freeaddrinfo(addresses);
  return connected;
}

// Sends `method` `path` as HTTP/1.0, so the server closes after answering, and returns the whole
// answer: status line, headers and body; "" when no connection or no answer in time.
std::string Fetch(int port, const std::string& method, const std::string& path,
                  const std::string& host = "127.0.0.1") {
  const int fd = Connect(host, port);
  if (fd < 0) return "";
  const std::string request = absl::StrCat(method, " ", path, " HTTP/1.0\r\nHost: x\r\n\r\n");
  std::string answer;
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    for (ssize_t got; (got = recv(fd, buffer, sizeof(buffer), 0)) > 0;) answer.append(buffer, got);
  }
  close(fd);
  return answer;
}

// True when the peer has neither closed `fd` nor sent anything on it.
bool StillOpen(int fd) {
  char byte;
  return recv(fd, &byte, 1, MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// File descriptors this process has open.
int OpenDescriptors() {
  int count = 0;
  DIR* fds = opendir("/proc/self/fd");
  while (readdir(fds) != nullptr) ++count;
  closedir(fds);
  return count;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = std::make_shared<prometheus::Registry>();
    prometheus::BuildCounter().Name("test_requests_total").Help("h").Register(*registry_).Add({});
    absl::StatusOr<std::unique_ptr<HttpServer>> http = HttpServer::Start("127.0.0.1:0", registry_);
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = std::move(*http);
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<HttpServer> http_;
};

TEST_F(HttpServerTest, AnswersGetAndHeadOnBothPaths) {
  ASSERT_GT(http_->port(), 0);
  const std::string health = Fetch(http_->port(), "GET", "/healthz");
  EXPECT_THAT(health, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(health, HasSubstr("Content-Length: 3\r\n"));
  EXPECT_THAT(health, HasSubstr("Content-Type: text/plain; charset=utf-8\r\n"));
  EXPECT_THAT(health, EndsWith("\r\n\r\nok\n"));

  const std::string metrics = Fetch(http_->port(), "GET", "/metrics");
  EXPECT_THAT(metrics, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(metrics, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(metrics, HasSubstr("\ntest_requests_total 0\n"));

  // HEAD: GET's headers, Content-Length included, and no body.
  const std::string head = Fetch(http_->port(), "HEAD", "/healthz");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(head, HasSubstr("Content-Length: 3\r\n"));
  EXPECT_THAT(head, EndsWith("\r\n\r\n"));
  const std::string head_metrics = Fetch(http_->port(), "HEAD", "/metrics");
  const size_t length = metrics.size() - metrics.find("\r\n\r\n") - 4;
  EXPECT_THAT(head_metrics, HasSubstr(absl::StrCat("Content-Length: ", length, "\r\n")));
  EXPECT_THAT(head_metrics, EndsWith("\r\n\r\n"));
}

TEST_F(HttpServerTest, RefusesOtherMethodsAndPaths) {
  for (const std::string method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"}) {
    for (const std::string path : {"/healthz", "/metrics"}) {
      const std::string answer = Fetch(http_->port(), method, path);
      EXPECT_THAT(answer, StartsWith("HTTP/1.1 405 ")) << method << " " << path;
      EXPECT_THAT(answer, HasSubstr("\r\nAllow: GET, HEAD\r\n")) << method << " " << path;
      EXPECT_THAT(answer, EndsWith(absl::StrCat("\r\n\r\nmethod ", method,
                                                " is not allowed; use GET, HEAD\n")));
    }
  }
  EXPECT_THAT(Fetch(http_->port(), "GET", "/nothing-here"), StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(Fetch(http_->port(), "GET", "/"), StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(Fetch(http_->port(), "GET", "/healthz/x"), StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(Fetch(http_->port(), "GET", "/healthz?verbose=1"), EndsWith("\r\n\r\nok\n"));
}

TEST_F(HttpServerTest, IdleConnectionsLeaveHealthAnswering) {
  // 100 connections that send nothing, half a request line, or a request line without the
  // blank line that ends the headers: each held a civetweb worker (16 of them) until its 5 s
  // request timeout, so /healthz queued behind them for about half a minute.
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) {
    const int fd = Connect("127.0.0.1", http_->port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
    const std::string partial = i % 3 == 1   ? "GET /heal"
                                : i % 3 == 2 ? "GET /healthz HTTP/1.1\r\n"
                                             : "";
    ASSERT_EQ(send(fd, partial.data(), partial.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(partial.size()));
  }
  for (int probe = 0; probe < 5; ++probe) {
    EXPECT_THAT(Fetch(http_->port(), "GET", "/healthz"), EndsWith("\r\n\r\nok\n"));
    EXPECT_THAT(Fetch(http_->port(), "GET", "/metrics"), StartsWith("HTTP/1.1 200 OK\r\n"));
  }
  int open = 0;
  for (const int fd : idle) open += StillOpen(fd) ? 1 : 0;
  EXPECT_EQ(open, 100) << "the server closed or answered idle connections";
  // Stopping with them open closes them.
  http_.reset();
  for (const int fd : idle) {
    EXPECT_FALSE(StillOpen(fd));
    close(fd);
  }
}

TEST_F(HttpServerTest, StopReleasesEveryDescriptor) {
  http_.reset();
  const int before = OpenDescriptors();
  absl::StatusOr<std::unique_ptr<HttpServer>> http = HttpServer::Start("127.0.0.1:0", registry_);
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_THAT(Fetch((*http)->port(), "GET", "/healthz"), EndsWith("ok\n"));
  http->reset();
  EXPECT_EQ(OpenDescriptors(), before);
}

TEST_F(HttpServerTest, ABusyPortIsUnavailableAndNamed) {
  const std::string listen = absl::StrCat("127.0.0.1:", http_->port());
  EXPECT_EQ(HttpServer::Start(listen, registry_).status(),
            absl::UnavailableError(absl::StrCat("cannot serve HTTP on '", listen,
                                                "': invalid address or port in use (", listen,
                                                ": Address already in use)")));
}

TEST(HttpPagesTest, PagesGetTheirPathEncodedAndAreGuardedAsMetrics) {
  std::vector<std::string> asked;
  absl::Mutex mu;
  HttpPages pages{.serves = [](absl::string_view path) { return absl::StartsWith(path, "/page/"); },
                  .answer =
                      [&](absl::string_view path) {
                        absl::MutexLock lock(&mu);
                        asked.emplace_back(path);
                        return HttpAnswer{.status = 302,
                                          .content_type = "text/x-test",
                                          .body = "moved\n",
                                          .location = "/elsewhere"};
                      }};
  HttpSecurity security;
  security.metrics_access = [](absl::string_view path, absl::string_view authorization) {
    return authorization == "Bearer good" ? absl::OkStatus()
                                          : absl::UnauthenticatedError(absl::StrCat(path, " no"));
  };
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      HttpServer::Start("127.0.0.1:0", std::make_shared<prometheus::Registry>(), security, pages);
  ASSERT_TRUE(http.ok()) << http.status();
  const int port = (*http)->port();

  // Refused before the page is asked, with the path in the message.
  const std::string refused = Fetch(port, "GET", "/page/a%2Fb");
  EXPECT_THAT(refused, StartsWith("HTTP/1.1 401 "));
  EXPECT_THAT(refused, EndsWith("\r\n\r\n/page/a%2Fb no\n"));
  EXPECT_THAT(Fetch(port, "GET", "/healthz"), EndsWith("ok\n"));
  EXPECT_THAT(Fetch(port, "GET", "/other"), StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(Fetch(port, "POST", "/page/x"), StartsWith("HTTP/1.1 405 "));

  const int fd = Connect("127.0.0.1", port);
  ASSERT_GE(fd, 0);
  const std::string request =
      "GET /page/a%2Fb%20c?q=1 HTTP/1.0\r\nAuthorization: Bearer good\r\n\r\n";
  ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string answer;
  char buffer[4096];
  for (ssize_t got; (got = recv(fd, buffer, sizeof(buffer), 0)) > 0;) answer.append(buffer, got);
  close(fd);
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 302 "));
  EXPECT_THAT(answer, HasSubstr("\r\nLocation: /elsewhere\r\n"));
  EXPECT_THAT(answer, HasSubstr("\r\nContent-Type: text/x-test\r\n"));
  EXPECT_THAT(answer, EndsWith("\r\n\r\nmoved\n"));
  absl::MutexLock lock(&mu);
  // As sent: still percent-encoded (a name's %2F stays one segment), without the query.
  EXPECT_EQ(asked, std::vector<std::string>{"/page/a%2Fb%20c"});
}

TEST(HttpServerAddressTest, ResolvesNamesAndRefusesBadAddresses) {
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<HttpServer>> local = HttpServer::Start("localhost:0", registry);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_THAT(Fetch((*local)->port(), "GET", "/healthz", "localhost"), EndsWith("ok\n"));

  const absl::Status unknown = HttpServer::Start("999.1.1.1:0", registry).status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(unknown.message()),
              StartsWith("cannot serve HTTP on '999.1.1.1:0': invalid address or port in use "
                         "(999.1.1.1: "));
  EXPECT_EQ(HttpServer::Start("no-port", registry).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpServer::Start("127.0.0.1:65536", registry).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HttpServerAddressTest, ServesIpv6InBrackets) {
  const int probe = socket(AF_INET6, SOCK_STREAM, 0);
  if (probe < 0) GTEST_SKIP() << "no IPv6 on this machine";
  close(probe);
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      HttpServer::Start("[::1]:0", std::make_shared<prometheus::Registry>());
  if (!http.ok() && absl::StrContains(http.status().message(), "Cannot assign")) {
    GTEST_SKIP() << "no ::1 on this machine: " << http.status();
  }
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_THAT(Fetch((*http)->port(), "GET", "/healthz", "::1"), EndsWith("ok\n"));
}

}  // namespace
}  // namespace qcal::server
