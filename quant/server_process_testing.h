// A qcal-server of this build for the quant tests that calibrate remotely (test-only, header
// only): QCAL_BINARY_DIR/qcal-server on 127.0.0.1:0, its address read from its ready line.
#ifndef QCAL_QUANT_SERVER_PROCESS_TESTING_H_
#define QCAL_QUANT_SERVER_PROCESS_TESTING_H_

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

extern char** environ;

namespace qcal::quant::test_support {

// qcal-server on 127.0.0.1:0, stopped with SIGTERM at the end.
class ServerProcess {
 public:
  ServerProcess() {
    const std::string binary = std::string(QCAL_BINARY_DIR) + "/qcal-server";
    int out[2];
    if (pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    std::vector<std::string> args = {binary, "--listen", "127.0.0.1:0", "--log-level", "warn"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int spawned = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (spawned != 0) {
      pid_ = -1;
      close(out[0]);
      return;
    }
    stdout_ = out[0];
    ReadReadyLine();
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (stdout_ >= 0) close(stdout_);
  }

  // "127.0.0.1:PORT" from "qcal-server listening on 127.0.0.1:PORT http off"; empty on failure.
  const std::string& address() const { return address_; }

 private:
  void ReadReadyLine() {
    std::string line;
    // A generous bound only so that a broken server fails the test instead of hanging it.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd fd{stdout_, POLLIN, 0};
      if (poll(&fd, 1, 1000) <= 0) continue;
      char buf[256];
      const ssize_t n = read(stdout_, buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    const std::string prefix = "qcal-server listening on ";
    const size_t at = line.find(prefix);
    if (at == std::string::npos) return;
    const size_t begin = at + prefix.size();
    address_ = line.substr(begin, line.find(' ', begin) - begin);
  }

  pid_t pid_ = -1;
  int stdout_ = -1;
  std::string address_;
};

}  // namespace qcal::quant::test_support

#endif  // QCAL_QUANT_SERVER_PROCESS_TESTING_H_
