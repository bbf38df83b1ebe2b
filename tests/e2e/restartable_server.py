"""A qcal-server process that load and fault runs can watch (pid, peak RSS), kill with SIGKILL
and start again on the same gRPC port, so that clients reconnect to the address they had.

    server = RestartableServer(server_bin, "--data-dir", str(tmp))   # a free port, picked once
    server.start()
    server.kill9()      # SIGKILL: no drain, no commit; waits until the process is gone
    server.start()      # same port, same flags (the same --data-dir)
    server.stop()

The gRPC port is picked once (bind to port 0, then released) and passed as --listen on every
start; gRPC's listener sets SO_REUSEADDR, so a port left in TIME_WAIT by the killed process
binds again. The HTTP port stays 127.0.0.1:0 (new on each start; `http_address` follows it).
"""

import os
import signal
import socket

from qcal_server_process import QcalServerProcess


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RestartableServer(QcalServerProcess):
    def __init__(self, server_bin, *extra_args, port=None):
        super().__init__(server_bin, *extra_args)
        self.port = port or free_port()
        # QcalServerProcess lays out ["bin", "--listen", "127.0.0.1:0", ...].
        self.args[2] = f"127.0.0.1:{self.port}"
        self.starts = 0

    @property
    def pid(self):
        return self._process.pid

    def start(self):
        super().start()
        self.starts += 1
        return self

    def running(self):
        return self._process is not None and self._process.poll() is None

    def kill9(self):
        """SIGKILL, then waits for the process to be reaped. Returns the exit status (-9)."""
        os.kill(self._process.pid, signal.SIGKILL)
        status = self._process.wait(timeout=60)
        self._process.stdout.close()
        return status
