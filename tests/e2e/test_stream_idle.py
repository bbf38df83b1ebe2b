"""--stream-idle-seconds on the streams other than Record (issue 10: streams idle past a timeout
are closed), against the real qcal-server over the raw wire: an UploadOnnx, LoadState or
ExportOnnx stream that sends a first piece and then nothing is ended by the server with CANCELLED
and a message naming the call, the model and the flag; what it sent is dropped, its
--max-state-bytes charge given back, and the model unchanged. A stream that keeps sending, each
piece well within the limit, is never ended however long it lasts. No timed assertion: the tests
wait, with a generous deadline, for what the server does."""

import re
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
from qcal_server_process import QcalServerProcess

DEADLINE_SECONDS = 60
# What a stalled stream sends before it stalls: enough to see in qcal_state_bytes.
PIECE = bytes(range(256)) * 256  # 64 KiB


def state_bytes_used(server):
    with urllib.request.urlopen(f"http://{server.http_address}/metrics", timeout=30) as page:
        metrics = page.read().decode()
    return int(re.search(r'\nqcal_state_bytes\{kind="used"\} (\d+)\n', metrics).group(1))


def record_one_batch(stub, model):
    stub.Record(iter([pb.RecordRequest(
        model=model, quantizer=b"x._input_quantizer",
        header=pb.TensorHeader(dtype=pb.DTYPE_FLOAT32, shape=[4]),
        data=np.array([1, 2, 3, 4], np.float32).tobytes())]), timeout=DEADLINE_SECONDS)


# call, the stalled stream's first message, how to start it (returns something with .code()).
STALLED = {
    "UploadOnnx": (pb.UploadOnnxRequest(model=b"m", data=PIECE),
                   lambda stub, requests: stub.UploadOnnx.future(requests,
                                                                 timeout=DEADLINE_SECONDS)),
    "LoadState": (pb.LoadStateRequest(model=b"loaded", data=PIECE),
                  lambda stub, requests: stub.LoadState.future(requests, timeout=DEADLINE_SECONDS)),
    "ExportOnnx": (pb.ExportOnnxRequest(model=b"m", compute=pb.ComputeAmaxRequest(method=b"max"),
                                        data=PIECE),
                   lambda stub, requests: stub.ExportOnnx(requests, timeout=DEADLINE_SECONDS)),
}

DROPPED = {
    "UploadOnnx": "the ONNX model bytes it sent were dropped; the model is unchanged",
    "LoadState": "the state file bytes it sent were dropped; no model was created or changed",
    "ExportOnnx": "what it sent was dropped; nothing was exported or stored",
}


@pytest.mark.parametrize("call", sorted(STALLED))
def test_a_stalled_stream_is_ended_and_changes_nothing(server_bin, call):
    first, start = STALLED[call]
    with QcalServerProcess(server_bin, "--stream-idle-seconds", "2") as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.CalibrationStub(channel)
            stub.CreateModel(pb.CreateModelRequest(model=b"m"))
            record_one_batch(stub, b"m")
            before_info = stub.GetModel(pb.GetModelRequest(model=b"m"))
            before_bytes = state_bytes_used(server)
            silent = threading.Event()

            def requests():
                yield first
                silent.wait(DEADLINE_SECONDS)

            try:
                call_future = start(stub, requests())
                # The piece is charged while the stream waits (it ends 2 s after the piece came).
                deadline = time.monotonic() + DEADLINE_SECONDS
                while state_bytes_used(server) < before_bytes + len(PIECE):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                code, details = call_future.code(), call_future.details()
            finally:
                silent.set()
            assert code == grpc.StatusCode.CANCELLED, details
            model = "loaded" if call == "LoadState" else "m"
            assert details == (f"model '{model}', {call}: the server received nothing on this "
                               f"stream for --stream-idle-seconds 2 and ended it; {DROPPED[call]}")
            assert state_bytes_used(server) == before_bytes
            assert stub.GetModel(pb.GetModelRequest(model=b"m")) == before_info
            assert not before_info.has_onnx and before_info.amax_method == ""
            assert [m.name for m in stub.ListModels(pb.ListModelsRequest()).models] == ["m"]
        assert f"{call} stream of model '{model}' from " in server.stderr()
        assert "ended by the server (--stream-idle-seconds 2)" in server.stderr()
        with urllib.request.urlopen(f"http://{server.http_address}/metrics", timeout=30) as page:
            assert "\nqcal_record_streams_idle_ended_total 1\n" in page.read().decode()


def test_a_stream_stalled_before_its_first_message_names_no_model(server_bin):
    with QcalServerProcess(server_bin, "--stream-idle-seconds", "1") as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.CalibrationStub(channel)
            silent = threading.Event()

            def requests():
                silent.wait(DEADLINE_SECONDS)
                yield from ()

            try:
                with pytest.raises(grpc.RpcError) as error:
                    stub.UploadOnnx(requests(), timeout=DEADLINE_SECONDS)
            finally:
                silent.set()
            assert error.value.code() == grpc.StatusCode.CANCELLED
            assert error.value.details() == (
                "UploadOnnx: the server received nothing on this stream for --stream-idle-seconds "
                f"1 and ended it; {DROPPED['UploadOnnx']}")


def test_a_slow_stream_that_never_idles_past_the_limit_is_not_ended(server_bin, onnx_models):
    onnx_bytes = onnx_models[13].read_bytes()
    size = -(-len(onnx_bytes) // 6)
    pieces = [onnx_bytes[i:i + size] for i in range(0, len(onnx_bytes), size)]
    with QcalServerProcess(server_bin, "--stream-idle-seconds", "1") as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.CalibrationStub(channel)
            stub.CreateModel(pb.CreateModelRequest(model=b"m"))

            def requests():
                # 6 pieces 0.3 s apart: the stream lasts longer than the limit, no gap reaches it.
                for number, piece in enumerate(pieces):
                    if number:
                        time.sleep(0.3)
                    yield pb.UploadOnnxRequest(model=b"m" if number == 0 else b"", data=piece)

            response = stub.UploadOnnx(requests(), timeout=DEADLINE_SECONDS)
            assert response.bytes == len(onnx_bytes)
            assert stub.GetModel(pb.GetModelRequest(model=b"m")).has_onnx
        assert "ended by the server" not in server.stderr()


def test_the_client_reopens_a_record_stream_the_server_ended_as_idle(server_bin):
    # The client keeps its Record stream open until a flush; the server ends it after 1 s of
    # silence with CANCELLED (with a message naming the flag, and no word of what it applied):
    # the next record reopens it and resends what was not confirmed (the server drops what it
    # had applied, and the client counts those as applied: its total is the server's).
    import qcal

    with QcalServerProcess(server_bin, "--stream-idle-seconds", "1") as server:
        session = qcal.Client(server.address).model("m")
        for size in (1, 2, 3):
            session.record("x._input_quantizer", np.arange(size, dtype=np.float32))
        deadline = time.monotonic() + DEADLINE_SECONDS
        while "ended by the server (--stream-idle-seconds 1)" not in server.stderr():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for size in (4, 5, 6):
            session.record("x._input_quantizer", np.arange(size, dtype=np.float32))
        session.flush()
        quantizer = session.info()["quantizers"]["x._input_quantizer"]
        assert (quantizer["batches"], quantizer["elements"]) == (6, 21)
        stats = session.stats()
        assert stats["reconnects"] == 1
        assert stats["duplicate_batches"] == 3  # the first three, resent
        assert (stats["applied_batches"], stats["applied_elements"]) == (6, 21)
        assert stats["applied_bytes"] == 21 * 4
        assert "Record stream of model 'm' from " in server.stderr()


def test_a_stream_the_client_cancels_is_dropped_even_when_what_arrived_parses(server_bin,
                                                                           onnx_models):
    """Read() ends a cancelled stream as it ends a finished one; the whole ONNX model arrived,
    and would parse, but the client cancelled before closing its side: nothing is stored."""
    onnx_bytes = onnx_models[13].read_bytes()
    with QcalServerProcess(server_bin) as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.CalibrationStub(channel)
            stub.CreateModel(pb.CreateModelRequest(model=b"m"))
            before = state_bytes_used(server)
            hold = threading.Event()

            def requests():
                yield pb.UploadOnnxRequest(model=b"m", data=onnx_bytes)
                hold.wait(DEADLINE_SECONDS)  # the stream stays open until the test cancels it

            future = stub.UploadOnnx.future(requests(), timeout=DEADLINE_SECONDS)
            deadline = time.monotonic() + DEADLINE_SECONDS
            while state_bytes_used(server) < before + len(onnx_bytes):  # the bytes arrived
                assert time.monotonic() < deadline
                time.sleep(0.05)
            future.cancel()
            hold.set()
            while state_bytes_used(server) != before:  # the handler returned, dropping them
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert not stub.GetModel(pb.GetModelRequest(model=b"m")).has_onnx
