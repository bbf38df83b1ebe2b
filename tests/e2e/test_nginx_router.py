"""deploy/nginx as it ships, run by Debian's nginx on loopback in front of real qcal-servers
(with TLS, mutual TLS and tokens, as deploy/kubernetes runs them; and plaintext), with only the
addresses and file paths replaced: `nginx -t` accepts it, each model always reaches the same
replica, calls without the header all reach one, and the models of a replica that is down get a
clear UNAVAILABLE instead of moving to another replica. (The three-replica calibration test of
routing is a test of its own.)"""

import grpc
import pytest

from kustomize_build import tree
from nginx_router import NginxRouter, free_port
from qcal_server_process import QcalServerProcess

MODELS = [f"team/model-{i}" for i in range(60)]


@pytest.fixture(scope="module", params=["tls", "plaintext"])
def router(request, server_bin, tmp_path_factory):
    secrets = tree() / "kubernetes/secrets" if request.param == "tls" else None
    flags = ["--auth-tokens", tree() / "kubernetes/secrets/tokens"]
    if secrets:
        flags += ["--tls-cert", secrets / "tls.crt", "--tls-key", secrets / "tls.key",
                  "--tls-client-ca", secrets / "ca.crt"]
    with QcalServerProcess(server_bin, *flags) as a, QcalServerProcess(server_bin, *flags) as b:
        down = f"127.0.0.1:{free_port()}"  # nothing listens there: a replica that is down
        directory = tmp_path_factory.mktemp("nginx")
        with NginxRouter([a.address, b.address, down], directory, secrets) as router:
            router.down, router.up = down, {a.address, b.address}
            yield router


def list_models(router, model):
    """ListModels through the router, routed by MODEL (None: no header); None or the error."""
    secrets = tree() / "kubernetes/secrets"
    admin = next(line.split()[1] for line in (secrets / "tokens").read_text().splitlines()
                 if line.startswith("admin"))
    if router.secrets:
        credentials = grpc.ssl_channel_credentials(
            (secrets / "ca.crt").read_bytes(), (secrets / "tls.key").read_bytes(),
            (secrets / "tls.crt").read_bytes())
        channel = grpc.secure_channel(router.address, credentials)
    else:
        channel = grpc.insecure_channel(router.address)
    with channel:
        call = channel.unary_unary("/qcal.v1.Calibration/ListModels")
        metadata = [("authorization", f"Bearer {admin}")] + ([("qcal-model", model)] if model else [])
        try:
            call(b"", metadata=metadata, timeout=10)
            return None
        except grpc.RpcError as error:
            return error


def test_each_model_stays_on_one_replica_and_a_down_one_is_unavailable(router):
    errors = {(m, rep): list_models(router, m) for m in MODELS for rep in range(2)}
    for _ in range(4):
        list_models(router, None)  # no header: an old client, or a call that names no model
    routed = router.routes()
    assert sorted(routed) == sorted(MODELS + ["-"])  # nginx logs an empty value as "-"
    # Calls without the header too: all on one replica, not spread round-robin.
    assert all(len(upstreams) == 1 for upstreams in routed.values()), routed
    del routed["-"]
    by_replica = {}
    for model, (upstream,) in routed.items():
        by_replica.setdefault(upstream, []).append(model)
    # Consistent hashing spreads 60 names over all three replicas (odds against: ~1e-10).
    assert set(by_replica) == router.up | {router.down}
    for model in MODELS:
        for rep in range(2):
            error = errors[(model, rep)]
            if model in by_replica[router.down]:
                assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
                assert "qcal router: the replica for this call is unreachable" in error.details()
            else:
                assert error is None, f"{model}: {error}"
