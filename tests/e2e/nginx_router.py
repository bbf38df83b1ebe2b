"""Debian's nginx as qcal's model-affine router, on loopback, for a test.

    with NginxRouter(["127.0.0.1:P1", "127.0.0.1:P2", "127.0.0.1:P3"], tmp_path) as router:
        client = qcal.Client(router.address)

The configuration is deploy/nginx/qcal.conf's routing part, in plaintext (h2c): the `qcal-model`
metadata header hashed with `hash ... consistent`, `max_fails=0` and `grpc_next_upstream off` so
that a down replica's models are never sent to another replica (their calls fail with
UNAVAILABLE instead), and the router's own UNAVAILABLE for an unreachable replica. Keep the two
in step. nginx runs in the foreground (daemon off) with its prefix, pid, logs and temp paths in a
temporary directory, on a free port. The access log records, per call, the header, the replica
it went to and the HTTP status (`calls()`).
"""

import os
import pathlib
import socket
import subprocess
import time

NGINX = "/usr/sbin/nginx"

UNAVAILABLE_MESSAGE = "qcal router: the replica that holds this model is unreachable; retry"

CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{ worker_connections 1024; }}
http {{
    log_format route '$http_qcal_model $upstream_addr $status';
    access_log {dir}/access.log route;
    client_body_temp_path {dir}/temp/client_body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;

    map $http_qcal_model $qcal_route {{
        ""      "(no qcal-model header)";
        default $http_qcal_model;
    }}
    upstream qcal_replicas {{
        hash $qcal_route consistent;
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port} http2;
        client_max_body_size 0;
        client_body_timeout 15m;
        location / {{
            grpc_pass grpc://qcal_replicas;
            grpc_next_upstream off;
            grpc_connect_timeout 5s;
            grpc_read_timeout 15m;
            grpc_send_timeout 15m;
            error_page 502 504 = @replica_unavailable;
        }}
        location @replica_unavailable {{
            default_type application/grpc;
            add_header grpc-status 14 always;
            add_header grpc-message "{message}" always;
            return 204;
        }}
    }}
}}
"""


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NginxRouter:
    def __init__(self, replicas, directory):
        if not os.access(NGINX, os.X_OK):
            raise RuntimeError(f"{NGINX} is missing: install Debian's nginx "
                               "(scripts/install-deps.sh does)")
        self.replicas = list(replicas)
        self.dir = pathlib.Path(directory)
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._process = None

    def start(self):
        (self.dir / "temp").mkdir(parents=True, exist_ok=True)
        # Run as root, nginx's workers drop to `nobody`: let them into the temp paths.
        os.chmod(self.dir, 0o755)
        os.chmod(self.dir / "temp", 0o777)
        servers = "\n".join(f"        server {r} max_fails=0;" for r in self.replicas)
        (self.dir / "nginx.conf").write_text(CONF.format(
            dir=self.dir, servers=servers, port=self.port, message=UNAVAILABLE_MESSAGE))
        self._process = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"),
             "-e", str(self.dir / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited {self._process.returncode}:\n{self.errors()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"nginx did not listen on {self.address}:\n"
                                       f"{self.errors()}")
                time.sleep(0.05)

    def errors(self):
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def calls(self):
        """(qcal-model header or "-", replica address or "-", HTTP status) of every call so
        far (nginx writes a line when a call ends)."""
        path = self.dir / "access.log"
        if not path.exists():
            return []
        return [tuple(line.split(" ")) for line in path.read_text().splitlines() if line]

    def stop(self):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
