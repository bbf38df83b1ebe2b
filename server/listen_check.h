// Why a gRPC server could not listen on HOST:PORT, found before gRPC tries (gRPC would only log
// a raw error line and fail): HOST is resolved and each of its addresses bound once, as gRPC's
// listener does; the port is free again when this returns.
//
//   if (std::string problem = ListenProblem("999.1.1.1", 5); !problem.empty()) ...
//   // problem == "999.1.1.1: Name or service not known"
#ifndef QCAL_SERVER_LISTEN_CHECK_H_
#define QCAL_SERVER_LISTEN_CHECK_H_

#include <string>

#include "absl/strings/string_view.h"

namespace qcal::server {

// Empty when some address of `host` (a name, an IPv4 address, or an IPv6 address with or without
// brackets) can be bound on `port` (0..65535; 0 always binds a free one); otherwise the reason,
// e.g. "HOST: Name or service not known" or "127.0.0.1:50051: Address already in use" (the
// first address's error when none binds).
std::string ListenProblem(absl::string_view host, int port);

}  // namespace qcal::server

#endif  // QCAL_SERVER_LISTEN_CHECK_H_
