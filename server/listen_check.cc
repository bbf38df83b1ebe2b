#include "server/listen_check.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace qcal::server {

std::string ListenProblem(absl::string_view host, int port) {
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
    return absl::StrCat(host, ": ", gai_strerror(error));
  }
  std::string first_problem;
  bool bound = false;
  for (const addrinfo* address = addresses; address != nullptr && !bound;
       address = address->ai_next) {
    const int fd = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
    if (fd < 0) {
      if (first_problem.empty()) first_problem = std::strerror(errno);
      continue;
    }
    // As gRPC's listener sets it: a port in TIME_WAIT is free, one being listened on is not.
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, address->ai_addr, address->ai_addrlen) == 0) {
      bound = true;
    } else if (first_problem.empty()) {
      first_problem = absl::StrCat(host, ":", port, ": ", std::strerror(errno));
    }
    close(fd);
  }
  freeaddrinfo(addresses);
  return bound ? std::string() : first_problem;
}

}  // namespace qcal::server
