// Progress of a long transfer, reported by the client library to whoever shows it (the qcal CLI
// draws a bar on a terminal; the library itself never prints).
//
//   qcal::LoadStateOptions options;
//   options.progress = [](int64_t done, int64_t total) { ... };  // bytes sent so far, of total
//   client->LoadStateFile("m", "m.qcalstate", options);
//
// The callback runs on the thread that moves the bytes (the caller's for unary-like streams, the
// session's sender thread for Record) once per message, so at most every 4 MiB: it must return
// quickly and must not call back into the client. An empty callback costs nothing.
#ifndef QCAL_CLIENT_PROGRESS_H_
#define QCAL_CLIENT_PROGRESS_H_

#include <cstdint>
#include <functional>

namespace qcal {

// Bytes moved so far and the total; the total is kUnknownTotal where the sender cannot know it
// (a state or export streamed from the server, a session's Record stream).
inline constexpr int64_t kUnknownTotal = -1;
using ProgressCallback = std::function<void(int64_t done_bytes, int64_t total_bytes)>;

}  // namespace qcal

#endif  // QCAL_CLIENT_PROGRESS_H_
