"""Exactly-once batches through the Python client against the real qcal-server process: a
server killed (kill -9) in the middle of a session and restarted on the same port, its model
restored from a state file saved while the session's stream was open (as --data-dir would restore
it), gets every batch exactly once: the resent batches it had applied are dropped. A server that
stays gone is a clear error after the session's reconnect_deadline, not a hang."""

import time

import numpy as np
import pytest

import qcal
from qcal_server_process import QcalServerProcess
from restartable_server import RestartableServer

QUANTIZER = "x._input_quantizer"


def batch(i):
    """64 values; the first is i + 1, so the histogram tells every batch apart."""
    values = np.full(64, 0.5, dtype=np.float32)
    values[0] = i + 1
    return values


def wait_applied(client, model, count):
    while True:
        quantizers = client.info(model)["quantizers"]
        if quantizers and quantizers[QUANTIZER]["batches"] >= count:
            return
        time.sleep(0.01)


def test_kill_restart_counts_every_batch_once(server_bin):
    server = RestartableServer(server_bin).start()
    try:
        client = qcal.Client(server.address, timeout=60)
        session = client.model("once", reconnect_deadline=30)
        for i in range(50):
            session.record(QUANTIZER, batch(i))
        # Applied by the server, not yet confirmed to the client (its stream is still open).
        wait_applied(client, "once", 50)
        state = client.save_state("once")  # holds the session's sequence, 50
        server.kill9()  # the open stream breaks
        server.start()  # same port, no --data-dir: the model is gone
        # The test's own first call may meet the dead connection (gRPC does not retry unary
        # calls); the session's stream reconnects by itself.
        for attempt in range(50):
            try:
                client.load_state("once", state)
                break
            except qcal.QcalError as error:
                assert error.code == "UNAVAILABLE" and attempt < 49, error
                time.sleep(0.1)
        for i in range(50, 120):
            session.record(QUANTIZER, batch(i))
        session.flush()
        stats = session.stats()
        assert stats["reconnects"] >= 1
        assert stats["duplicate_batches"] == 50  # resent, already in the restored state
        assert stats["dropped_batches"] == 0
        assert stats["last_sequence"] == 120
        assert stats["applied_sequence"] == 120
        assert stats["durable_sequence"] == 120  # no --data-dir: durable equals applied
        # The cut stream never reported 1..50; their duplicates count them: the server's count.
        assert (stats["applied_batches"], stats["applied_elements"]) == (120, 64 * 120)

        info = client.info("once")["quantizers"][QUANTIZER]
        assert info["batches"] == 120
        assert info["elements"] == 64 * 120
        histogram = session.histogram(QUANTIZER)
        assert histogram["total"] == 64 * 120
        assert histogram["abs_max"] == 120.0
        assert session.commit() == {"applied_sequence": 120, "durable_sequence": 120}
        client.commit("once")
        with pytest.raises(qcal.QcalError) as error:
            client.commit("nosuch")
        assert error.value.code == "NOT_FOUND"
        session.close()
    finally:
        server.stop()


def test_a_server_gone_past_the_deadline_is_an_error(server_bin):
    server = QcalServerProcess(server_bin).start()
    try:
        client = qcal.Client(server.address, timeout=60)
        session = client.model("gone", reconnect_deadline=0.5)
        session.record(QUANTIZER, batch(0))
        session.flush()
        server._process.kill()
        server._process.wait()
        for i in range(3):
            session.record(QUANTIZER, batch(i))
        with pytest.raises(qcal.QcalError) as error:
            session.flush()
        assert error.value.code == "UNAVAILABLE"
        assert "reconnect_deadline of 500ms" in str(error.value)
        assert "3 recorded batches were not confirmed" in str(error.value)
        assert session.stats()["dropped_batches"] == 3
    finally:
        server.stop()


def test_reconnect_deadline_is_checked(server):
    client = qcal.Client(server.address)
    for bad in (0, -1, float("inf")):
        with pytest.raises(qcal.QcalError) as error:
            client.model("deadline", reconnect_deadline=bad)
        assert error.value.code == "INVALID_ARGUMENT"
        assert "reconnect_deadline" in str(error.value)


def test_cli_commit(cli, client, model_name):
    client.create(model_name)
    assert cli.ok("commit", model_name) == f"committed model '{model_name}'\n"
    cli.fails("commit", "nosuch", code="NOT_FOUND", message="nosuch")


def test_data_dir_kill_restart_counts_every_batch_once(server_bin, tmp_path):
    # With --data-dir: batches 1..30 made durable by the session's commit(), 31..80 by a commit
    # the session does not see (the client's `qcal commit`), 81..100 applied but never written;
    # then kill -9 and a restart on the same directory and port. The session resends 31..100:
    # the server drops 31..80 (restored from its file) and applies 81..100 again, once.
    server = RestartableServer(server_bin, "--data-dir", str(tmp_path / "data"),
                               "--commit-interval-seconds", "3600").start()
    try:
        client = qcal.Client(server.address, timeout=60)
        session = client.model("durable", reconnect_deadline=30)
        for i in range(30):
            session.record(QUANTIZER, batch(i))
        assert session.commit() == {"applied_sequence": 30, "durable_sequence": 30}
        for i in range(30, 80):
            session.record(QUANTIZER, batch(i))
        wait_applied(client, "durable", 80)
        client.commit("durable")
        for i in range(80, 100):
            session.record(QUANTIZER, batch(i))
        wait_applied(client, "durable", 100)
        server.kill9()
        server.start()  # same port, same --data-dir
        for i in range(100, 120):
            session.record(QUANTIZER, batch(i))
        session.flush()
        stats = session.stats()
        assert stats["reconnects"] >= 1
        assert stats["duplicate_batches"] == 50  # 31..80: in the file
        assert stats["dropped_batches"] == 0
        assert stats["applied_sequence"] == 120
        assert stats["durable_sequence"] < 120  # applied since the restart, not yet written
        # 81..100, applied twice (the restart lost them), count once: the server's count.
        assert (stats["applied_batches"], stats["applied_elements"]) == (120, 64 * 120)
        assert session.commit() == {"applied_sequence": 120, "durable_sequence": 120}
        histogram = session.histogram(QUANTIZER)
        assert histogram["total"] == 64 * 120
        assert histogram["abs_max"] == 120.0
        assert session.info()["quantizers"][QUANTIZER]["batches"] == 120
        session.close()
    finally:
        server.stop()


def test_a_commit_after_a_restart_that_lost_applied_batches_resends_them(server_bin, tmp_path):
    # Batches 1..20 applied and flushed (the stream closed), not written; kill -9 and a restart
    # on the same directory and port; the session's next call is commit(). The server answers
    # that it holds the session up to 0: the session resends 1..20 and commits them, where it
    # once returned durable 0 with no error.
    server = RestartableServer(server_bin, "--data-dir", str(tmp_path / "data"),
                               "--commit-interval-seconds", "3600").start()
    try:
        client = qcal.Client(server.address, timeout=60)
        session = client.model("lost", reconnect_deadline=30)
        for i in range(20):
            session.record(QUANTIZER, batch(i))
        session.flush()
        assert session.stats()["applied_sequence"] == 20
        server.kill9()
        server.start()  # same port, same --data-dir
        assert session.commit() == {"applied_sequence": 20, "durable_sequence": 20}
        assert session.info()["quantizers"][QUANTIZER]["batches"] == 20
        stats = session.stats()
        assert (stats["applied_batches"], stats["dropped_batches"]) == (20, 0)
        session.close()
    finally:
        server.stop()
