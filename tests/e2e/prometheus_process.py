"""Starts Debian's real `prometheus` on a free loopback port with its own storage in a temp dir,
and asks its HTTP API.

    with PrometheusProcess(config_path, workdir) as prom:
        prom.query('up{job="qcal"}')  # the result list of /api/v1/query
"""

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

# Seconds to wait for an event (Prometheus ready, a scrape, a rule evaluation): far above what
# each takes here (a second or two), so a loaded machine does not fail the test.
WAIT = 60


def require_tool(name):
    """The path of `name`; fails (never skips): CI installs it (scripts/install-deps.sh)."""
    path = shutil.which(name)
    assert path, f"{name} is missing: install Debian's prometheus package (scripts/install-deps.sh)"
    return path


def free_port():
    # Prometheus cannot announce a port it picked itself; the gap until it binds is tiny, and a
    # clash shows as a start failure, not as a wrong result.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what, probe, timeout=WAIT):
    """Polls `probe` until it returns something truthy, and returns that; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


class PrometheusProcess:
    def __init__(self, config_path, workdir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self.args = [
            require_tool("prometheus"),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self._process = None
        self._log = None

    def start(self):
        self._log = open(self.log_path, "w")
        self._process = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
        wait_for("Prometheus to be ready", self._ready)
        return self

    def _ready(self):
        if self._process.poll() is not None:
            raise AssertionError(f"prometheus exited {self._process.returncode}: {self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def log(self):
        return self.log_path.read_text()

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        """The series of an instant query (a list, empty when the expression matches nothing)."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        return data["result"]

    def stop(self):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
