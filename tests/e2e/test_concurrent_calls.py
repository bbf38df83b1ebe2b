"""--max-concurrent-calls against the real qcal-server: open Record streams hold the server's
threads; one call more is refused with RESOURCE_EXHAUSTED naming the flag and changes nothing;
the health service still answers; once the streams end, calls are served again. No timed
assertion: the waits poll, with a generous deadline, for what the server reports."""

import re
import subprocess
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
import qcal
from qcal_server_process import QcalServerProcess

DEADLINE_SECONDS = 60
LIMIT = 2
Q = b"x._input_quantizer"
REFUSAL = ("qcal-server has no thread free for this call (--max-concurrent-calls 2: each call, "
           "an open Record stream too, holds one until it ends); retry later, close streams you "
           "are done with, or raise --max-concurrent-calls")


def batch(*values):
    data = np.array(values, np.float32)
    return pb.RecordRequest(model=b"m", quantizer=Q,
                            header=pb.TensorHeader(dtype=pb.DTYPE_FLOAT32, shape=[len(values)]),
                            data=data.tobytes())


def metric(server, series):
    """A series' value from /metrics (HTTP: no gRPC thread); 0 when absent."""
    with urllib.request.urlopen(f"http://{server.http_address}/metrics", timeout=30) as page:
        text = page.read().decode()
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else 0


def applied_batches(server):
    return metric(server, 'qcal_record_batches_total{model="m"}')


def wait_for_batches(server, count):
    deadline = time.monotonic() + DEADLINE_SECONDS
    while applied_batches(server) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert applied_batches(server) == count


def health_check(channel):
    """grpc.health.v1.Health/Check for "" with hand-encoded messages (no health stubs here)."""
    response = channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=DEADLINE_SECONDS)
    return {b"\x08\x01": "SERVING", b"\x08\x02": "NOT_SERVING"}.get(response, response)


class OpenStream:
    """A Record stream that sends one batch and stays open until close()."""

    def __init__(self, stub, value):
        self._release = threading.Event()

        def messages():
            yield batch(value)
            self._release.wait(DEADLINE_SECONDS)

        self.future = stub.Record.future(messages(), timeout=DEADLINE_SECONDS)

    def close(self):
        self._release.set()
        return self.future.result()


def test_a_call_past_the_limit_is_refused_and_changes_nothing(server_bin):
    with QcalServerProcess(server_bin, "--max-concurrent-calls", str(LIMIT)) as server:
        assert f"--max-concurrent-calls {LIMIT}" in server.stderr()  # the limits line
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.CalibrationStub(channel)
            stub.CreateModel(pb.CreateModelRequest(model=b"m"))
            # One at a time, each seen applied (over HTTP) before the next opens: both hold a
            # thread, and no poll of ours took the second one meanwhile.
            streams = []
            try:
                for number in range(1, LIMIT + 1):
                    streams.append(OpenStream(stub, float(number)))
                    wait_for_batches(server, number)

                # A unary call, and a Record stream whose batch must not count.
                with pytest.raises(grpc.RpcError) as unary:
                    stub.GetModel(pb.GetModelRequest(model=b"m"), timeout=DEADLINE_SECONDS)
                assert unary.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert unary.value.details() == REFUSAL
                with pytest.raises(grpc.RpcError) as stream:
                    stub.Record(iter([batch(100.0)]), timeout=DEADLINE_SECONDS)
                assert stream.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert stream.value.details() == REFUSAL
                # What the qcal client shows, for a call and for a session's Record stream.
                client = qcal.Client(server.address)
                with pytest.raises(qcal.QcalError) as client_error:
                    client.models()
                assert client_error.value.code == "RESOURCE_EXHAUSTED"
                assert REFUSAL in client_error.value.message
                session = client.model("m", create=False)
                session.record(Q.decode(), np.array([200.0], np.float32))
                with pytest.raises(qcal.QcalError) as flush_error:
                    session.flush()
                assert flush_error.value.code == "RESOURCE_EXHAUSTED"
                assert REFUSAL in flush_error.value.message
                # The health service is not in the pool: probes are answered.
                assert health_check(channel) == "SERVING"
                assert applied_batches(server) == LIMIT
                # GetModel, Record, models(), the session's Record stream.
                assert metric(server, "qcal_calls_refused_total") == 4
            finally:
                results = [s.close() for s in streams]
            assert [r.batches for r in results] == [1] * LIMIT

            # Served again. The ended streams' threads return to the pool a moment after their
            # clients see the status, so a call in that moment may still be refused: retry.
            deadline = time.monotonic() + DEADLINE_SECONDS
            while True:
                try:
                    info = stub.GetModel(pb.GetModelRequest(model=b"m"), timeout=DEADLINE_SECONDS)
                    break
                except grpc.RpcError as error:
                    if (error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED
                            or time.monotonic() > deadline):
                        raise
                    time.sleep(0.01)
            # The open streams' batches (one value each), not the refused streams'.
            assert [(q.batches, q.elements) for q in info.quantizers] == [(LIMIT, LIMIT)]
            # And LIMIT streams at once again.
            streams = [OpenStream(stub, 1.0) for _ in range(LIMIT)]
            assert [s.close().batches for s in streams] == [1] * LIMIT


@pytest.mark.parametrize(
    "value, code, message",
    [
        ("0", 1, "qcal-server: --max-concurrent-calls must be in 2..1048576 (a client keeps its "
                 "Record stream open while it makes other calls: it needs 2), got 0\n"),
        ("1", 1, "got 1\n"),
        ("-3", 1, "got -3\n"),
        ("1048577", 1, "got 1048577\n"),
        ("many", 2, "qcal-server: usage: --max-concurrent-calls: many is not an integer"),
        ("4294967296", 2, "--max-concurrent-calls: 4294967296 is not an integer in [-2147483648, "
                          "2147483647]"),
    ],
)
def test_bad_values_are_refused_naming_the_flag(server_bin, value, code, message):
    result = subprocess.run(
        [str(server_bin), "--listen", "127.0.0.1:0", "--max-concurrent-calls", value],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "--max-concurrent-calls" in result.stderr
    assert result.stdout == ""
