"""The rendered StatefulSet's container, run as the kubelet would run it: the real qcal-server
with the args of each overlay (ConfigMap values substituted), its Secret volumes written out as
files where the args expect them, and its PVC as an empty --data-dir. Only the listen addresses
move to free loopback ports. It starts (every flag name and value is one the server takes, the
certificate, key and tokens file load), answers the probes' HTTPS GET /healthz without a
certificate or token, serves /metrics to the ServiceMonitor's credentials, and stops cleanly on
SIGTERM."""

import base64
import http.client
import re
import socket
import ssl
import subprocess

import pytest

from kustomize_build import OVERLAYS, effective_args, find, flags, render, server_container

READY = re.compile(r"^qcal-server listening on (\S+) http (\S+)$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def materialize(docs, statefulset, container, root):
    """Writes each mounted volume under ROOT as the kubelet would; returns {mountPath: dir}."""
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    mounts = {}
    for mount in container["volumeMounts"]:
        local = root / mount["name"]
        local.mkdir()
        volume = volumes.get(mount["name"], {})
        if "secret" in volume:
            for key, value in find(docs, "Secret", volume["secret"]["secretName"])["data"].items():
                (local / key).write_bytes(base64.b64decode(value))
        mounts[mount["mountPath"]] = local  # emptyDir and the PVC start empty
    return mounts


def localize(args, mounts):
    out = []
    for arg in args:
        name, value = arg.split("=", 1)
        if name in ("--listen", "--http-listen"):
            value = f"127.0.0.1:{free_port()}"
        for path in sorted(mounts, key=len, reverse=True):
            if value == path or value.startswith(path + "/"):
                value = str(mounts[path]) + value[len(path):]
                break
        out.append(f"{name}={value}")
    return out


class Https(http.client.HTTPSConnection):
    """HTTPS to ADDRESS that checks the certificate against SERVER_NAME (Prometheus's
    tlsConfig.serverName): it dials a pod IP, not a name."""

    def __init__(self, address, context, server_name):
        host, port = address.rsplit(":", 1)
        super().__init__(host, int(port), context=context, timeout=10)
        self.server_name = server_name

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


def https_get(address, path, context, headers=None, server_name=None):
    connection = Https(address, context, server_name or address.rsplit(":", 1)[0])
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


@pytest.mark.parametrize("overlay", [f"overlays/{o}" for o in OVERLAYS] + ["composed-cpu"])
def test_the_container_starts_answers_its_probes_and_stops_on_sigterm(overlay, server_bin, tmp_path):
    docs = render(overlay)
    statefulset, container = server_container(docs)
    mounts = materialize(docs, statefulset, container, tmp_path)
    args = localize(effective_args(docs, container), mounts)
    process = subprocess.Popen([str(server_bin), *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        ready = READY.match(process.stdout.readline().strip())
        if ready is None and flags(args)["device"] == "cuda":
            # No GPU here: every flag was taken, and only the device refused, as on a GPU-less node.
            # With --data-dir this once crashed (SIGSEGV) instead: QcalServer::Shutdown
            # committed through a core that was never built.
            code = process.wait(timeout=30)
            assert code == 1
            assert "no CUDA device" in process.stderr.read()
            return
        assert ready, f"{overlay}: {process.stderr.read() if process.poll() is not None else ''}"
        probe = ssl.create_default_context()
        probe.check_hostname, probe.verify_mode = False, ssl.CERT_NONE  # as the kubelet's
        assert https_get(ready.group(2), container["livenessProbe"]["httpGet"]["path"], probe) == (200, "ok\n")
        monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
        for monitor in monitors:
            (endpoint,) = monitor["spec"]["endpoints"]
            tls = endpoint["tlsConfig"]
            secret = lambda ref: base64.b64decode(find(docs, "Secret", ref["name"])["data"][ref["key"]])
            (tmp_path / "ca.pem").write_bytes(secret(tls["ca"]["secret"]))
            (tmp_path / "cert.pem").write_bytes(secret(tls["cert"]["secret"]))
            (tmp_path / "key.pem").write_bytes(secret(tls["keySecret"]))
            scraper = ssl.create_default_context(cafile=tmp_path / "ca.pem")
            scraper.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
            token = secret(endpoint["authorization"]["credentials"]).decode().strip()
            status, body = https_get(ready.group(2), endpoint["path"], scraper,
                                     {"Authorization": f"Bearer {token}"}, tls["serverName"])
            assert status == 200 and "qcal_models " in body
    finally:
        if process.poll() is None:
            process.terminate()
    assert process.wait(timeout=60) == 0, process.stderr.read()
