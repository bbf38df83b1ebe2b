"""Runs deploy/nginx, as it ships, in Debian's nginx on loopback in front of given qcal-servers.

    with NginxRouter([a.address, b.address, c.address], directory, secrets=dir_or_None) as router:
        router.address   # localhost:PORT, what clients dial (TLS when secrets is given)
        router.routes()  # {model: {upstream address, ...}} from nginx's access log

Only what names the Kubernetes world is replaced: the `server qcal-N:50051` lines by the given
addresses (as many as qcal.conf lists, or fewer: the lines beyond them are dropped), the listen
port, /etc/qcal/tls/ by SECRETS (tls.crt, tls.key, ca.crt:
deploy/kubernetes/secrets/make-dev-secrets.sh makes them, naming localhost and qcal), the temp
and log paths by DIRECTORY. With secrets=None the TLS lines are dropped and grpcs:// becomes
grpc://, for plaintext servers; the routing lines stay as they ship.
"""

import re
import shutil
import socket
import subprocess
import time

from kustomize_build import REPO

TLS_LINE = re.compile(r"(?m)^\s*(ssl_|grpc_ssl_)\S*\s[^\n]*;\n")


def nginx_binary():
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    assert path, "nginx is missing: scripts/install-deps.sh installs Debian's nginx"
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NginxRouter:
    def __init__(self, upstreams, directory, secrets=None):
        self.upstreams = list(upstreams)
        self.directory = directory
        self.secrets = secrets
        self.port = free_port()
        self.address = f"localhost:{self.port}"
        self._process = None

    def _write_config(self):
        conf = (REPO / "deploy/nginx/qcal.conf").read_text()
        # Fewer upstreams than qcal.conf lists: its last `server` lines are dropped (a router
        # scaled down; the remaining servers keep their places on the hash ring).
        servers = iter(self.upstreams)

        def server_line(match):
            address = next(servers, None)
            return "" if address is None else match.group(0).replace(match.group(1), address, 1)

        conf, listed = re.subn(r"(?m)^\s*server\s+(qcal-\d+:50051)[^\n]*\n", server_line, conf)
        assert listed >= len(self.upstreams), f"qcal.conf lists {listed} replicas"
        conf = conf.replace("listen 50051", f"listen 127.0.0.1:{self.port}")
        if self.secrets is None:
            conf = TLS_LINE.sub("", conf).replace(" ssl http2;", " http2;")
            conf = conf.replace("grpcs://", "grpc://")
        else:
            conf = conf.replace("/etc/qcal/tls/", f"{self.secrets}/")
        main = (REPO / "deploy/nginx/nginx.conf").read_text()
        main = main.replace("/tmp/", f"{self.directory}/").replace("/etc/nginx/qcal/", f"{self.directory}/")
        main = main.replace("access_log /dev/stdout", f"access_log {self.directory}/access.log")
        (self.directory / "qcal.conf").write_text(conf)
        (self.directory / "nginx.conf").write_text(main)
        return [nginx_binary(), "-e", "stderr", "-p", f"{self.directory}/",
                "-c", str(self.directory / "nginx.conf")]

    def start(self):
        nginx = self._write_config()
        check = subprocess.run([*nginx, "-t"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, f"nginx -t: {check.stderr}"
        # nginx logs every failed upstream connect to stderr: to a file, so that a test with a
        # replica down long enough cannot fill a pipe nobody reads and stall the router.
        with open(self.directory / "nginx.stderr", "w") as log:
            self._process = subprocess.Popen([*nginx, "-g", "daemon off;"], stderr=log)
        for _ in range(600):  # until it listens (at most 30 s), or exits
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            assert self._process.poll() is None, f"nginx exited: {self.errors()}"
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on {self.address}")

    def errors(self):
        """What nginx wrote to stderr so far (its error log)."""
        return (self.directory / "nginx.stderr").read_text()

    def routes(self):
        """{model: {upstreams}}; a call without the qcal-model header is logged as model '-'."""
        routed = {}
        for line in (self.directory / "access.log").read_text().splitlines():
            model, upstream = re.search(r'model="([^"]*)" upstream=(\S+)', line).groups()
            routed.setdefault(model, set()).add(upstream)
        return routed

    def stop(self):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
