// HOST:PORT addresses of the servers (gRPC's --listen, HTTP's --http-listen): split, bound, and
// when that fails the reason, found before gRPC tries (gRPC would only log a raw error line and
// fail). HOST is resolved and its addresses tried in turn, as gRPC's listener does.
//
//   if (std::string problem = ListenProblem("999.1.1.1", 5); !problem.empty()) ...
//   // problem == "999.1.1.1: Name or service not known"
//   QCAL_ASSIGN_OR_RETURN(int fd, ListenSocket("localhost", 0));   // the HTTP server's socket
#ifndef QCAL_SERVER_BASE_LISTEN_CHECK_H_
#define QCAL_SERVER_BASE_LISTEN_CHECK_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qcal::server {

// Splits "HOST:PORT" (HOST may be a bracketed IPv6 address) at the last colon.
// INVALID_ARGUMENT when there is no colon or the port is not a number in 0..65535.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(absl::string_view address);

// A socket listening on the first address of `host` (a name, an IPv4 address, or an IPv6
// address with or without brackets) that binds on `port` (0..65535; 0 binds a free one),
// non-blocking and close-on-exec, with SO_REUSEADDR (a port in TIME_WAIT is free, one being
// listened on is not); the caller closes it. UNAVAILABLE with ListenProblem's reason otherwise.
absl::StatusOr<int> ListenSocket(absl::string_view host, int port);

// Empty when some address of `host` can be bound on `port`, as ListenSocket; otherwise the
// reason, e.g. "HOST: Name or service not known" or "127.0.0.1:50051: Address already in use"
// (the first address's error when none binds). The port is free again when this returns.
std::string ListenProblem(absl::string_view host, int port);

}  // namespace qcal::server

#endif  // QCAL_SERVER_BASE_LISTEN_CHECK_H_
