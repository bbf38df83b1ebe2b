"""A long-lived client's one-off calls across a server restart: the channel's own retries
(client/channel.cc, gRPC's retry policy) carry them over the reconnect backoff, where they once
failed with UNAVAILABLE for seconds after the server was back."""

import pytest

import qcal
from restartable_server import RestartableServer


def test_one_off_calls_after_a_restart_succeed_without_the_caller_retrying(server_bin, tmp_path):
    server = RestartableServer(server_bin, "--data-dir", str(tmp_path / "data")).start()
    try:
        client = qcal.Client(f"127.0.0.1:{server.port}")
        client.create("m")
        assert [m["name"] for m in client.models()] == ["m"]
        server.kill9()
        # While it is down, a call fails, after the retries, with UNAVAILABLE: the channel is
        # now in its reconnect backoff.
        with pytest.raises(qcal.QcalError) as down:
            client.models()
        assert down.value.code == "UNAVAILABLE"
        server.start()
        # Back: the first call succeeds, and the model (durable at CreateModel) is there.
        for _ in range(3):
            assert [m["name"] for m in client.models()] == ["m"]
            assert client.info("m")["name"] == "m"
    finally:
        server.stop()
