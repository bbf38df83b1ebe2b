#include "server/base/listen_check.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace qcal::server {

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view address) {
  const size_t colon = address.rfind(':');
  const absl::string_view port_text =
      colon == absl::string_view::npos ? absl::string_view() : address.substr(colon + 1);
  int port = -1;
  const auto parsed = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (colon == absl::string_view::npos || colon == 0 || port_text.empty() ||
      parsed.ec != std::errc() || parsed.ptr != port_text.data() + port_text.size() || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "' is not HOST:PORT (port 0..65535; 0 picks one)"));
  }
  return std::make_pair(std::string(address.substr(0, colon)), port);
}

absl::StatusOr<int> ListenSocket(absl::string_view host, int port) {
  std::string name(host);
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  const std::string service = absl::StrCat(port);
  if (const int error = getaddrinfo(name.c_str(), service.c_str(), &hints, &addresses);
      error != 0) {
    return absl::UnavailableError(absl::StrCat(host, ": ", gai_strerror(error)));
  }
  std::string first_problem;
  int listening = -1;
  for (const addrinfo* address = addresses; address != nullptr && listening < 0;
       address = address->ai_next) {
    const int fd = socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          address->ai_protocol);
    if (fd < 0) {
      if (first_problem.empty()) first_problem = std::strerror(errno);
      continue;
    }
    // As gRPC's listener sets it: a port in TIME_WAIT is free, one being listened on is not.
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, address->ai_addr, address->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0) {
      listening = fd;
      continue;
    }
    if (first_problem.empty()) {
      first_problem = absl::StrCat(host, ":", port, ": ", std::strerror(errno));
    }
    close(fd);
  }
  freeaddrinfo(addresses);
  if (listening < 0) return absl::UnavailableError(first_problem);
  return listening;
}

std::string ListenProblem(absl::string_view host, int port) {
  absl::StatusOr<int> fd = ListenSocket(host, port);
  if (!fd.ok()) return std::string(fd.status().message());
  close(*fd);
  return std::string();
}

}  // namespace qcal::server
