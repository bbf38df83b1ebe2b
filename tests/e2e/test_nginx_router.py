"""deploy/nginx as it ships, run by Debian's nginx on loopback in front of real qcal-servers
(TLS, mutual TLS, tokens, as deploy/kubernetes runs them), with only the addresses and file
paths replaced: `nginx -t` accepts it, each model always reaches the same replica, and the models
of a replica that is down get a clear UNAVAILABLE instead of moving to another replica.
(The three-replica calibration test of routing is a test of its own.)"""

import os
import pathlib
import re
import shutil
import socket
import subprocess
import time

import grpc
import pytest

from kustomize_build import REPO, tree
from qcal_server_process import QcalServerProcess

MODELS = [f"team/model-{i}" for i in range(60)]


def nginx_binary():
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    assert path, "nginx is missing: scripts/install-deps.sh installs Debian's nginx"
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_config(directory, secrets, upstreams, port):
    """deploy/nginx with the Kubernetes names and paths swapped for loopback ones."""
    conf = (REPO / "deploy/nginx/qcal.conf").read_text()
    servers = iter(upstreams)
    conf = re.sub(r"(?m)^(\s*server\s+)qcal-\d+:50051", lambda m: m.group(1) + next(servers), conf)
    assert next(servers, None) is None, "qcal.conf lists fewer replicas than the test starts"
    conf = conf.replace("/etc/qcal/tls/", f"{secrets}/").replace("listen 50051", f"listen 127.0.0.1:{port}")
    main = (REPO / "deploy/nginx/nginx.conf").read_text()
    main = main.replace("/tmp/", f"{directory}/").replace("/etc/nginx/qcal/", f"{directory}/")
    main = main.replace("access_log /dev/stdout", f"access_log {directory}/access.log")
    (directory / "qcal.conf").write_text(conf)
    (directory / "nginx.conf").write_text(main)
    return directory / "nginx.conf"


@pytest.fixture(scope="module")
def router(server_bin, tmp_path_factory):
    secrets = tree() / "kubernetes/secrets"
    tls = ["--tls-cert", secrets / "tls.crt", "--tls-key", secrets / "tls.key",
           "--tls-client-ca", secrets / "ca.crt", "--auth-tokens", secrets / "tokens"]
    directory = tmp_path_factory.mktemp("nginx")
    with QcalServerProcess(server_bin, *tls) as a, QcalServerProcess(server_bin, *tls) as b:
        down = f"127.0.0.1:{free_port()}"  # nothing listens there: a replica that is down
        port = free_port()
        config = loopback_config(directory, secrets, [a.address, b.address, down], port)
        nginx = [nginx_binary(), "-e", "stderr", "-p", f"{directory}/", "-c", str(config)]
        check = subprocess.run([*nginx, "-t"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        process = subprocess.Popen([*nginx, "-g", "daemon off;"], stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(100):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert process.poll() is None, process.stderr.read()
                time.sleep(0.05)
            yield {"port": port, "secrets": secrets, "log": directory / "access.log", "down": down,
                   "up": {a.address, b.address}}
        finally:
            process.terminate()
            process.wait(timeout=30)


def list_models(router, model):
    """ListModels through the router, routed by MODEL; None when it succeeds, else the error."""
    secrets = router["secrets"]
    credentials = grpc.ssl_channel_credentials(
        (secrets / "ca.crt").read_bytes(), (secrets / "tls.key").read_bytes(),
        (secrets / "tls.crt").read_bytes())
    admin = next(line.split()[1] for line in (secrets / "tokens").read_text().splitlines()
                 if line.startswith("admin"))
    with grpc.secure_channel(f"localhost:{router['port']}", credentials) as channel:
        call = channel.unary_unary("/qcal.v1.Calibration/ListModels")
        try:
            metadata = [("authorization", f"Bearer {admin}")] + ([("qcal-model", model)] if model else [])
            call(b"", metadata=metadata, timeout=10)
            return None
        except grpc.RpcError as error:
            return error


def test_each_model_stays_on_one_replica_and_a_down_one_is_unavailable(router):
    errors = {(m, rep): list_models(router, m) for m in MODELS for rep in range(2)}
    for _ in range(4):
        list_models(router, None)  # no header: an old client, or a call that names no model
    routed = {}
    for line in router["log"].read_text().splitlines():
        model, upstream = re.search(r'model="([^"]*)" upstream=(\S+)', line).groups()
        routed.setdefault(model, set()).add(upstream)
    assert sorted(routed) == sorted(MODELS + ["-"])  # nginx logs an empty value as "-"
    # Calls without the header too: all on one replica, not spread round-robin.
    assert all(len(upstreams) == 1 for upstreams in routed.values()), routed
    del routed["-"]
    by_replica = {}
    for model, (upstream,) in routed.items():
        by_replica.setdefault(upstream, []).append(model)
    # Consistent hashing spreads 60 names over all three replicas (odds against: ~1e-10).
    assert set(by_replica) == router["up"] | {router["down"]}
    for model in MODELS:
        for rep in range(2):
            error = errors[(model, rep)]
            if model in by_replica[router["down"]]:
                assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
                assert "qcal router: the replica that holds this model is unreachable" in error.details()
            else:
                assert error is None, f"{model}: {error}"
