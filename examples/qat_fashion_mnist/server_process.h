// A qcal-server child process for the example's --spawn-server: started on a free loopback port,
// ready once it prints "qcal-server listening on HOST:PORT ...", stopped with SIGTERM when the
// object goes away.
//
//   absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(binary);
//   auto client = qcal::Client::Create((*server)->address());
#ifndef QCAL_EXAMPLES_QAT_FASHION_MNIST_SERVER_PROCESS_H_
#define QCAL_EXAMPLES_QAT_FASHION_MNIST_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace qcal::examples {

class ServerProcess {
 public:
  // Runs `binary --listen 127.0.0.1:0 --log-level warn` and waits (up to 60 s) for its ready line.
  // Errors: INTERNAL when it cannot be started, UNAVAILABLE when it exits or stays silent.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& binary);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // "127.0.0.1:PORT".
  const std::string& address() const { return address_; }

 private:
  ServerProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  const pid_t pid_;
  const int stdout_fd_;
  std::string address_;
};

}  // namespace qcal::examples

#endif  // QCAL_EXAMPLES_QAT_FASHION_MNIST_SERVER_PROCESS_H_
