"""Security of the real qcal-server (README, "Security"): TLS and mutual TLS on gRPC and HTTP with
certificates made by openssl for this run (tls_certs.py), bearer tokens with roles and model
prefixes over every RPC, SIGHUP rotation, and start errors. The clients (CLI, Python) connect
with --tls-ca / --token as users do."""

import http.client
import os
import queue
import signal
import ssl
import subprocess
import threading
import time

import grpc
import numpy as np
import pytest

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
import qcal
from qcal_server_process import QcalServerProcess
from tls_certs import make_certs

# Tokens of the server under test: one per role for all models, one per role for team-a/.
TOKENS = {
    ("reader", ""): "reader-token-00000000000000",
    ("trainer", ""): "trainer-token-0000000000000",
    ("admin", ""): "admin-token-000000000000000",
    ("reader", "team-a/"): "tenant-reader-token-0000000",
    ("trainer", "team-a/"): "tenant-trainer-token-000000",
    ("admin", "team-a/"): "tenant-admin-token-00000000",
}
ROLES = ["reader", "trainer", "admin"]
Q = b"x._input_quantizer"
TIMEOUT = 30  # seconds; far above what any call here takes


def token_file(path, tokens):
    lines = ["# qcal-server tokens: ROLE TOKEN [MODEL_PREFIX]", ""]
    lines += [f"{role} {token} {prefix}".rstrip() for (role, prefix), token in tokens.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secure_server(server_bin, certs, tmp_path_factory):
    """TLS (no client certificate) and tokens; debug logging, so the token grep sees every line."""
    tokens = token_file(tmp_path_factory.mktemp("tokens") / "tokens", TOKENS)
    with QcalServerProcess(server_bin, "--tls-cert", str(certs.server_cert), "--tls-key",
                           str(certs.server_key), "--auth-tokens", str(tokens),
                           "--log-level", "debug") as process:
        yield process


@pytest.fixture(scope="module")
def mtls_server(server_bin, certs):
    with QcalServerProcess(server_bin, "--tls-cert", str(certs.server_cert), "--tls-key",
                           str(certs.server_key), "--tls-client-ca", str(certs.ca)) as process:
        yield process


def tls_channel(address, certs, client=None):
    key = cert = None
    if client == "good":
        key, cert = certs.client_key.read_bytes(), certs.client_cert.read_bytes()
    elif client == "other":
        key, cert = certs.other_client_key.read_bytes(), certs.other_client_cert.read_bytes()
    credentials = grpc.ssl_channel_credentials(certs.ca.read_bytes(), key, cert)
    return grpc.secure_channel(address, credentials)


def bearer(token):
    return [("authorization", f"Bearer {token}")] if token is not None else []


# --- TLS -------------------------------------------------------------------------------------


def test_tls_grpc_works_and_plaintext_is_refused(secure_server, certs):
    with tls_channel(secure_server.address, certs) as channel:
        stub = pb_grpc.CalibrationStub(channel)
        reply = stub.ListModels(pb.ListModelsRequest(), metadata=bearer(TOKENS["admin", ""]),
                                timeout=TIMEOUT)
        assert isinstance(reply, pb.ListModelsResponse)
    with grpc.insecure_channel(secure_server.address) as channel:
        with pytest.raises(grpc.RpcError) as error:
            pb_grpc.CalibrationStub(channel).ListModels(
                pb.ListModelsRequest(), metadata=bearer(TOKENS["admin", ""]), timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    # A client that trusts another CA does not accept the server's certificate.
    other = grpc.ssl_channel_credentials(certs.other_ca.read_bytes())
    with grpc.secure_channel(secure_server.address, other) as channel:
        with pytest.raises(grpc.RpcError) as error:
            pb_grpc.CalibrationStub(channel).ListModels(
                pb.ListModelsRequest(), metadata=bearer(TOKENS["admin", ""]), timeout=TIMEOUT)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mtls_grpc_needs_a_client_certificate_of_the_ca(mtls_server, certs):
    with tls_channel(mtls_server.address, certs, client="good") as channel:
        reply = pb_grpc.CalibrationStub(channel).ListModels(pb.ListModelsRequest(),
                                                             timeout=TIMEOUT)
        assert isinstance(reply, pb.ListModelsResponse)
    for client in (None, "other"):
        with tls_channel(mtls_server.address, certs, client=client) as channel:
            with pytest.raises(grpc.RpcError) as error:
                pb_grpc.CalibrationStub(channel).ListModels(pb.ListModelsRequest(),
                                                            timeout=TIMEOUT)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE, client


def https_get(address, path, certs, client=None, token=None):
    """(status, body) of GET over HTTPS, trusting certs.ca."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    if client == "good":
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    elif client == "other":
        context.load_cert_chain(str(certs.other_client_cert), str(certs.other_client_key))
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=TIMEOUT)
    try:
        connection.request("GET", path, headers=dict(bearer(token)))
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_https_healthz_open_metrics_needs_a_token_without_prefix(secure_server, certs):
    # libmicrohttpd's HTTPS (GnuTLS) really works with the installed packages.
    assert https_get(secure_server.http_address, "/healthz", certs) == (200, "ok\n")
    status, body = https_get(secure_server.http_address, "/metrics", certs)
    assert status == 401 and "needs 'Authorization: Bearer TOKEN'" in body
    status, body = https_get(secure_server.http_address, "/metrics", certs, token="x" * 20)
    assert status == 401 and "not one of the server's" in body
    status, body = https_get(secure_server.http_address, "/metrics", certs,
                             token=TOKENS["reader", "team-a/"])
    assert status == 403 and "needs a token without a model prefix" in body
    status, body = https_get(secure_server.http_address, "/metrics", certs,
                             token=TOKENS["reader", ""])
    assert status == 200 and "# TYPE qcal_" in body
    # Plain HTTP on the HTTPS port gets no page.
    host, port = secure_server.http_address.rsplit(":", 1)
    plain = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        plain.request("GET", "/healthz")
        plain.getresponse().read()
    plain.close()


def test_https_needs_no_unversioned_libssl(server_bin):
    # HTTPS is libmicrohttpd's, on GnuTLS, linked at build time: unlike civetweb, nothing
    # dlopens an unversioned libssl.so (which only libssl-dev provides) at run time.
    linked = subprocess.run(["ldd", str(server_bin)], capture_output=True, text=True,
                            check=True).stdout
    assert "libmicrohttpd.so.12" in linked and "libgnutls.so.30" in linked
    assert "libssl.so =>" not in linked
    assert b"libssl.so\0" not in server_bin.read_bytes()


def test_https_with_client_ca_metrics_needs_a_client_certificate(mtls_server, certs):
    # /healthz asks for no certificate: Kubernetes' probes send none.
    assert https_get(mtls_server.http_address, "/healthz", certs) == (200, "ok\n")
    for client in (None, "other"):
        status, body = https_get(mtls_server.http_address, "/metrics", certs, client=client)
        assert status == 403, client
        assert "needs a client certificate signed by the server's --tls-client-ca" in body
    status, body = https_get(mtls_server.http_address, "/metrics", certs, client="good")
    assert status == 200 and "# TYPE qcal_" in body


# --- Tokens: every RPC, every role, prefixes ---------------------------------------------------


def _stream(*messages):
    return iter(messages)


# RPC -> (least role, a call of it on `model` with `metadata`). Requests are minimal: the
# authorization is checked before anything else, and an allowed call then fails (or not) on its
# content, never with UNAUTHENTICATED or PERMISSION_DENIED.
CALLS = {
    "GetModel": ("reader", lambda s, m, md: s.GetModel(
        pb.GetModelRequest(model=m), metadata=md, timeout=TIMEOUT)),
    "GetHistogram": ("reader", lambda s, m, md: s.GetHistogram(
        pb.GetHistogramRequest(model=m, quantizer=Q), metadata=md, timeout=TIMEOUT)),
    "GetAmaxTable": ("reader", lambda s, m, md: s.GetAmaxTable(
        pb.GetAmaxTableRequest(model=m), metadata=md, timeout=TIMEOUT)),
    "SaveState": ("reader", lambda s, m, md: list(s.SaveState(
        pb.SaveStateRequest(model=m), metadata=md, timeout=TIMEOUT))),
    "CreateModel": ("trainer", lambda s, m, md: s.CreateModel(
        pb.CreateModelRequest(model=m, exist_ok=True), metadata=md, timeout=TIMEOUT)),
    "Record": ("trainer", lambda s, m, md: s.Record(
        _stream(pb.RecordRequest(model=m)), metadata=md, timeout=TIMEOUT)),
    "ComputeAmax": ("trainer", lambda s, m, md: s.ComputeAmax(
        pb.ComputeAmaxRequest(model=m), metadata=md, timeout=TIMEOUT)),
    "UploadOnnx": ("trainer", lambda s, m, md: s.UploadOnnx(
        _stream(pb.UploadOnnxRequest(model=m, data=b"x")), metadata=md, timeout=TIMEOUT)),
    "ExportOnnx": ("trainer", lambda s, m, md: list(s.ExportOnnx(
        _stream(pb.ExportOnnxRequest(model=m)), metadata=md, timeout=TIMEOUT))),
    "Commit": ("trainer", lambda s, m, md: s.Commit(
        pb.CommitRequest(model=m), metadata=md, timeout=TIMEOUT)),
    "DeleteModel": ("admin", lambda s, m, md: s.DeleteModel(
        pb.DeleteModelRequest(model=m), metadata=md, timeout=TIMEOUT)),
    "ResetModel": ("admin", lambda s, m, md: s.ResetModel(
        pb.ResetModelRequest(model=m), metadata=md, timeout=TIMEOUT)),
    "LoadState": ("admin", lambda s, m, md: s.LoadState(
        _stream(pb.LoadStateRequest(model=m, data=b"x")), metadata=md, timeout=TIMEOUT)),
}


def outcome(call, stub, model, metadata):
    """The call's status code (OK when it returns), and its message."""
    try:
        call(stub, model, metadata)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        return error.code(), error.details()


@pytest.fixture(scope="module")
def secure_stub(secure_server, certs):
    with tls_channel(secure_server.address, certs) as channel:
        yield pb_grpc.CalibrationStub(channel)


def test_the_table_covers_every_rpc():
    # A new RPC fails here until it is added to CALLS, and so to the token checks.
    rpcs = {method.name for method in pb.DESCRIPTOR.services_by_name["Calibration"].methods}
    assert rpcs == set(CALLS) | {"ListModels"}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_every_rpc_checks_token_role_and_prefix(secure_stub, method):
    least, call = CALLS[method]
    model = f"team-a/{method}".encode()
    other_model = f"team-b/{method}".encode()
    denied = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)

    # No token, an unknown token, a token not sent as Bearer.
    for metadata in ([], bearer("not-a-token-of-the-server"),
                     [("authorization", f"Basic {TOKENS['admin', '']}")]):
        code, message = outcome(call, secure_stub, model, metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED, (metadata, message)

    for role in ROLES:
        allowed = ROLES.index(role) >= ROLES.index(least)
        for prefix in ("", "team-a/"):
            code, message = outcome(call, secure_stub, model, bearer(TOKENS[role, prefix]))
            if allowed:
                assert code not in denied, (role, prefix, code, message)
            else:
                assert code == grpc.StatusCode.PERMISSION_DENIED, (role, code, message)
                assert f"{method} needs the {least} role; this token's role is {role}" in message
        # A tenant's token on another tenant's model.
        code, message = outcome(call, secure_stub, other_model, bearer(TOKENS[role, "team-a/"]))
        assert code == grpc.StatusCode.PERMISSION_DENIED, (role, code, message)
        if allowed:
            assert message == (
                f"model 'team-b/{method}', {method}: this token is limited to the models whose "
                "names start with 'team-a/'")
        # The same call with a token for all models passes the check.
        code, message = outcome(call, secure_stub, other_model, bearer(TOKENS[role, ""]))
        assert (code not in denied) == allowed, (role, code, message)


def test_list_models_shows_a_tenant_only_its_models(secure_stub):
    admin = bearer(TOKENS["admin", ""])
    for name in (b"team-a/listed", b"team-b/hidden"):
        secure_stub.CreateModel(pb.CreateModelRequest(model=name, exist_ok=True), metadata=admin,
                                timeout=TIMEOUT)
    everything = {m.name for m in secure_stub.ListModels(
        pb.ListModelsRequest(), metadata=bearer(TOKENS["reader", ""]), timeout=TIMEOUT).models}
    assert {"team-a/listed", "team-b/hidden"} <= everything
    tenant = {m.name for m in secure_stub.ListModels(
        pb.ListModelsRequest(), metadata=bearer(TOKENS["reader", "team-a/"]),
        timeout=TIMEOUT).models}
    assert "team-a/listed" in tenant
    assert all(name.startswith("team-a/") for name in tenant), tenant
    with pytest.raises(grpc.RpcError) as error:
        secure_stub.ListModels(pb.ListModelsRequest(), timeout=TIMEOUT)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- The clients -------------------------------------------------------------------------------


def test_python_client_with_tls_ca_and_token(secure_server, certs, monkeypatch):
    client = qcal.Client(secure_server.address, tls_ca=certs.ca, token=TOKENS["trainer", "team-a/"])
    session = client.model("team-a/python")
    session.record("x._input_quantizer", np.array([0.5, -3.0, 2.0], np.float32))
    session.flush()
    table = session.compute_amax(method="max")
    assert table["quantizers"]["x._input_quantizer"]["amax"] == 3.0
    with pytest.raises(qcal.QcalError) as error:
        client.model("team-b/python")
    assert error.value.code == "PERMISSION_DENIED"
    # $QCAL_TOKEN when token is left out.
    monkeypatch.setenv("QCAL_TOKEN", TOKENS["reader", ""])
    reader = qcal.Client(secure_server.address, tls_ca=str(certs.ca))
    assert reader.model("team-a/python", create=False).info()["name"] == "team-a/python"
    monkeypatch.delenv("QCAL_TOKEN")
    with pytest.raises(qcal.QcalError) as error:
        qcal.Client(secure_server.address, tls_ca=certs.ca).model("team-a/python",
                                                                  create=False).info()
    assert error.value.code == "UNAUTHENTICATED"
    # Bad arguments are refused before anything is sent, and the token is never quoted.
    with pytest.raises(qcal.QcalError) as error:
        qcal.Client(secure_server.address, tls_ca=certs.ca, token="has a blank-0123456789")
    assert error.value.code == "INVALID_ARGUMENT" and "blank-0123" not in error.value.message
    with pytest.raises(qcal.QcalError) as error:
        qcal.Client(secure_server.address, tls_ca=str(certs.ca) + ".missing")
    assert "cannot read tls_ca (--tls-ca) file" in error.value.message
    with pytest.raises(qcal.QcalError) as error:
        qcal.Client(secure_server.address, tls_ca=certs.ca, tls_cert=certs.client_cert)
    assert "go together" in error.value.message
    with pytest.raises(TypeError):
        qcal.Client(secure_server.address, token=12345)
    # Checked before gRPC sees them: a key of another certificate once gave only gRPC's
    # "UNAVAILABLE: empty address list".
    bad = {
        "does not match the certificate in tls_cert (--tls-cert)":
            dict(tls_cert=certs.client_cert, tls_key=certs.other_client_key),
        f"tls_key (--tls-key) file '{certs.client_cert}': holds no PEM private key":
            dict(tls_cert=certs.client_cert, tls_key=certs.client_cert),
        f"tls_cert (--tls-cert) file '{certs.client_key}': holds no PEM certificate":
            dict(tls_cert=certs.client_key, tls_key=certs.client_key),
        f"tls_ca (--tls-ca) file '{certs.client_key}': holds no PEM certificate":
            dict(tls_ca=certs.client_key),
        f"tls_ca (--tls-ca) file '{certs.ca.parent}' is a directory":
            dict(tls_ca=certs.ca.parent),
    }
    for message, files in bad.items():
        with pytest.raises(qcal.QcalError) as error:
            qcal.Client(secure_server.address, **{"tls_ca": certs.ca, **files})
        assert error.value.code == "INVALID_ARGUMENT", message
        assert message in error.value.message, (message, error.value.message)


def test_python_client_with_client_certificate(mtls_server, certs):
    client = qcal.Client(mtls_server.address, tls_ca=certs.ca, tls_cert=certs.client_cert,
                         tls_key=certs.client_key)
    assert client.model("mtls-python").info()["name"] == "mtls-python"
    with pytest.raises(qcal.QcalError) as error:
        qcal.Client(mtls_server.address, tls_ca=certs.ca).model("mtls-python")
    assert error.value.code == "UNAVAILABLE"


def test_cli_with_tls_ca_and_token(secure_server, certs, cli_bin):
    def qcal_cli(*args, env_token=None):
        env = dict(os.environ)
        env.pop("QCAL_TOKEN", None)
        if env_token is not None:
            env["QCAL_TOKEN"] = env_token
        return subprocess.run([str(cli_bin), "--server", secure_server.address, *args],
                              capture_output=True, text=True, env=env, timeout=TIMEOUT)

    tls = ["--tls-ca", str(certs.ca)]
    made = qcal_cli(*tls, "--token", TOKENS["trainer", ""], "create", "team-a/cli")
    assert made.returncode == 0, made.stderr
    assert "created model 'team-a/cli'" in made.stdout
    listed = qcal_cli(*tls, "models", "--format", "json", env_token=TOKENS["reader", "team-a/"])
    assert listed.returncode == 0, listed.stderr
    assert "team-a/cli" in listed.stdout and "team-b/" not in listed.stdout
    refused = qcal_cli(*tls, "info", "team-a/cli")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: UNAUTHENTICATED: this server takes bearer tokens")
    refused = qcal_cli(*tls, "--token", TOKENS["reader", ""], "create", "team-a/cli2")
    assert refused.returncode == 1
    assert "PERMISSION_DENIED: model 'team-a/cli2', CreateModel needs the trainer role" in (
        refused.stderr)
    plaintext = qcal_cli("--token", TOKENS["admin", ""], "models")
    assert plaintext.returncode == 1 and "UNAVAILABLE" in plaintext.stderr


def test_tokens_never_reach_the_log(secure_server):
    # Runs after the tests above (file order) on the same server, which logged at debug level.
    log = secure_server.stderr()
    assert "PERMISSION_DENIED" in log and "UNAUTHENTICATED" in log
    for token in TOKENS.values():
        assert token not in log
    assert "Basic" not in log


# --- SIGHUP rotation ---------------------------------------------------------------------------


def wait_for_log(server, text, count):
    """Waits until `text` is in the server's log `count` times (the reload is asynchronous)."""
    deadline = time.monotonic() + TIMEOUT
    while server.stderr().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{server.stderr()}"
        time.sleep(0.02)


def test_sighup_rotates_tokens_without_dropping_streams(server_bin, tmp_path):
    old, new = "old-trainer-token-0000000000", "new-trainer-token-0000000000"
    path = token_file(tmp_path / "tokens", {("trainer", ""): old})
    with QcalServerProcess(server_bin, "--auth-tokens", str(path), "--log-level",
                           "debug") as server, grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.CalibrationStub(channel)
        stub.CreateModel(pb.CreateModelRequest(model=b"rotated"), metadata=bearer(old),
                         timeout=TIMEOUT)
        batch = np.array([1.0, -2.0], np.float32).tobytes()

        def message(first=False):
            return pb.RecordRequest(model=b"rotated" if first else b"", quantizer=Q,
                                    header=pb.TensorHeader(dtype=pb.DTYPE_FLOAT32, shape=[2]),
                                    data=batch)

        # A Record stream opened with the old token stays open across the reload.
        messages = queue.Queue()
        messages.put(message(first=True))
        stream = stub.Record.future(iter(messages.get, None), metadata=bearer(old))
        applied = lambda: stub.GetModel(pb.GetModelRequest(model=b"rotated"),  # noqa: E731
                                        metadata=bearer(current[0]), timeout=TIMEOUT)
        current = [old]
        deadline = time.monotonic() + TIMEOUT
        while sum(q.batches for q in applied().quantizers) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)

        token_file(path, {("trainer", ""): new})
        server._process.send_signal(signal.SIGHUP)
        wait_for_log(server, "reloaded --auth-tokens file", 1)
        current[0] = new
        for _ in range(3):
            messages.put(message())
        messages.put(None)
        assert stream.result(timeout=TIMEOUT).batches == 4  # all applied, none dropped

        code, _ = outcome(CALLS["GetModel"][1], stub, b"rotated", bearer(old))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert sum(q.batches for q in applied().quantizers) == 4

        # A bad file is refused on reload; the tokens in force stay.
        path.write_text(f"trainer {new}\nsuperuser another-token-000000000000\n")
        server._process.send_signal(signal.SIGHUP)
        wait_for_log(server, "tokens not reloaded", 1)
        assert "line 2: the first field is no role" in server.stderr()
        assert applied().name == "rotated"
        path.unlink()
        server._process.send_signal(signal.SIGHUP)
        wait_for_log(server, "tokens not reloaded", 2)
        assert f"cannot read --auth-tokens file '{path}'" in server.stderr()
        assert applied().name == "rotated"

        log = server.stderr()
        for token in (old, new, "another-token-000000000000"):
            assert token not in log


# --- Start errors ------------------------------------------------------------------------------


def start_error(server_bin, *args):
    done = subprocess.run([str(server_bin), "--listen", "127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 1, done
    assert done.stdout == ""
    return done.stderr


def test_bad_security_files_stop_the_server_naming_the_file(server_bin, certs, tmp_path):
    missing = tmp_path / "missing.pem"
    cert, key = str(certs.server_cert), str(certs.server_key)
    assert f"cannot read --tls-cert file '{missing}': No such file or directory" in start_error(
        server_bin, "--tls-cert", str(missing), "--tls-key", key)
    assert f"cannot read --tls-key file '{missing}'" in start_error(
        server_bin, "--tls-cert", cert, "--tls-key", str(missing))
    assert (f"--tls-key file '{certs.client_key}': does not match the certificate in "
            f"--tls-cert '{cert}'") in start_error(
        server_bin, "--tls-cert", cert, "--tls-key", str(certs.client_key))
    assert f"--tls-cert file '{key}': holds no PEM certificate" in start_error(
        server_bin, "--tls-cert", key, "--tls-key", key)
    assert f"--tls-key file '{cert}': holds no PEM private key" in start_error(
        server_bin, "--tls-cert", cert, "--tls-key", cert)
    assert f"--tls-client-ca file '{key}': holds no PEM certificate" in start_error(
        server_bin, "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", key)
    assert "--tls-cert and --tls-key go together" in start_error(server_bin, "--tls-cert", cert)
    assert "--tls-cert and --tls-key go together" in start_error(
        server_bin, "--tls-client-ca", str(certs.ca))
    assert f"cannot read --auth-tokens file '{missing}'" in start_error(
        server_bin, "--auth-tokens", str(missing))
    short = tmp_path / "short"
    short.write_text("# tokens\nadmin short-token\n")
    stderr = start_error(server_bin, "--auth-tokens", str(short))
    assert (f"--auth-tokens file '{short}': line 2: the token is 11 characters long; at least 16 "
            "are required") in stderr
    assert "short-token" not in stderr.replace(str(short), "")
