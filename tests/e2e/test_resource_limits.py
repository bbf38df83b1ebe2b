"""What clients can make the server hold (issue 10, items 4 and 5), against the real qcal-server:
--max-models (through the CLI), --max-quantizers-per-model and --max-state-bytes (through the
Python client), --model-ttl, --stream-idle-seconds, and the standard health service
(grpc.health.v1). Each refusal names its flag and changes nothing. No timed assertion: the TTL
and idle tests poll, with a generous deadline, for what the server does."""

import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
import qcal
from conftest import Cli
from qcal_server_process import QcalServerProcess

DEADLINE_SECONDS = 60


def started(server_bin, *flags):
    return QcalServerProcess(server_bin, *flags)


def test_the_cli_shows_the_max_models_refusal(server_bin, cli_bin):
    with started(server_bin, "--max-models", "1") as server:
        cli = Cli(cli_bin, server.address)
        cli.ok("create", "a")
        cli.fails("create", "b", code="RESOURCE_EXHAUSTED",
                  message="model 'b': the server holds 1 models, its --max-models 1; delete "
                          "models you are done with (DeleteModel) or raise --max-models")
        assert [m["name"] for m in qcal.Client(server.address).models()] == ["a"]
        cli.ok("delete", "a")
        cli.ok("create", "b")


def test_a_quantizer_past_the_limit_is_refused_and_created_nowhere(server_bin):
    with started(server_bin, "--max-quantizers-per-model", "2") as server:
        session = qcal.Client(server.address).model("m")
        for name in ("a", "b", "c"):
            session.record(f"{name}._input_quantizer", np.ones(4, np.float32))
        with pytest.raises(qcal.QcalError) as error:
            session.flush()
        assert error.value.code == "RESOURCE_EXHAUSTED"
        assert ("model 'm' with quantizer 'c._input_quantizer' would hold 3 quantizers, more "
                "than the server's --max-quantizers-per-model 2") in error.value.message
        assert sorted(session.info()["quantizers"]) == ["a._input_quantizer", "b._input_quantizer"]


def test_state_past_the_budget_is_refused_and_deleting_gives_it_back(server_bin):
    # 1 MiB: a mergeable histogram reserves its worst case, 4096 bins of 24 bytes (about 98 KB),
    # so about ten of them fit.
    with started(server_bin, "--max-state-bytes", str(1 << 20)) as server:
        client = qcal.Client(server.address)
        session = client.model("m")
        recorded = 0
        with pytest.raises(qcal.QcalError) as error:
            for q in range(40):
                session.record(f"l{q}._input_quantizer", np.arange(1, 65, dtype=np.float32))
                session.flush()
                recorded += 1
        assert error.value.code == "RESOURCE_EXHAUSTED"
        assert "more bytes of model state" in error.value.message
        assert "of its --max-state-bytes 1048576" in error.value.message
        assert 5 <= recorded < 40
        info = session.info()["quantizers"]
        assert len(info) == recorded  # the refused quantizer was not created
        assert all(q["batches"] == 1 for q in info.values())
        client.delete("m")
        again = client.model("m2")
        for q in range(recorded):
            again.record(f"l{q}._input_quantizer", np.arange(1, 65, dtype=np.float32))
        again.flush()
        assert len(again.info()["quantizers"]) == recorded


def test_a_model_no_call_uses_is_deleted_after_the_ttl(server_bin):
    with started(server_bin, "--model-ttl", "1") as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.CalibrationStub(channel)
            for name in (b"idle", b"used"):
                stub.CreateModel(pb.CreateModelRequest(model=name))
            deadline = time.monotonic() + DEADLINE_SECONDS
            names = ["idle", "used"]
            while "idle" in names and time.monotonic() < deadline:
                stub.GetModel(pb.GetModelRequest(model=b"used"))  # a use; listing is not one
                names = [m.name for m in stub.ListModels(pb.ListModelsRequest()).models]
                time.sleep(0.1)
            assert names == ["used"]
        assert "model 'idle' deleted: no call used it for" in server.stderr()
        assert "(--model-ttl 1)" in server.stderr()
        with urllib.request.urlopen(f"http://{server.http_address}/metrics", timeout=30) as page:
            metrics = page.read().decode()
        assert "\nqcal_models_expired_total 1\n" in metrics
        assert "\nqcal_models 1\n" in metrics


def test_a_model_the_ttl_deletes_does_not_come_back_from_the_data_dir(server_bin, tmp_path):
    data_dir = tmp_path / "data"
    with started(server_bin, "--model-ttl", "1", "--data-dir", str(data_dir)) as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.CalibrationStub(channel)
            for name in (b"idle", b"used"):
                stub.CreateModel(pb.CreateModelRequest(model=name))
                stub.Commit(pb.CommitRequest(model=name))  # both are on disk now
            deadline = time.monotonic() + DEADLINE_SECONDS
            names = ["idle", "used"]
            while "idle" in names and time.monotonic() < deadline:
                stub.GetModel(pb.GetModelRequest(model=b"used"))
                names = [m.name for m in stub.ListModels(pb.ListModelsRequest()).models]
                time.sleep(0.1)
            assert names == ["used"]
    # Restarted without a ttl: the swept model's file went with it.
    with started(server_bin, "--data-dir", str(data_dir)) as server:
        assert [m["name"] for m in qcal.Client(server.address).models()] == ["used"]


def test_an_idle_record_stream_is_ended_and_its_batches_stay(server_bin):
    with started(server_bin, "--stream-idle-seconds", "1") as server:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.CalibrationStub(channel)
            stub.CreateModel(pb.CreateModelRequest(model=b"m"))
            silent = threading.Event()

            def messages():
                yield pb.RecordRequest(
                    model=b"m", quantizer=b"x._input_quantizer",
                    header=pb.TensorHeader(dtype=pb.DTYPE_FLOAT32, shape=[2]),
                    data=np.array([1, 2], np.float32).tobytes())
                # Half a batch, then nothing: the server ends the stream.
                yield pb.RecordRequest(
                    quantizer=b"x._input_quantizer",
                    header=pb.TensorHeader(dtype=pb.DTYPE_FLOAT32, shape=[4]),
                    data=np.array([7, 8], np.float32).tobytes())
                silent.wait(DEADLINE_SECONDS)

            try:
                with pytest.raises(grpc.RpcError) as error:
                    stub.Record(messages(), timeout=DEADLINE_SECONDS)
            finally:
                silent.set()
            assert error.value.code() == grpc.StatusCode.CANCELLED
            assert error.value.details() == (
                "model 'm', Record: the server received nothing on this stream for "
                "--stream-idle-seconds 1 and ended it; a batch left half sent was dropped; the "
                "batches before it stay applied")
            quantizer = stub.GetModel(pb.GetModelRequest(model=b"m")).quantizers[0]
            assert (quantizer.batches, quantizer.elements) == (1, 2)
        assert "nothing received for" in server.stderr()
        assert "ended by the server (--stream-idle-seconds 1)" in server.stderr()


def health_check(channel, service):
    """grpc.health.v1.Health/Check with the messages hand-encoded (HealthCheckRequest{service=1},
    HealthCheckResponse{status=1}): grpcio ships no health stubs here."""
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    request = b"\x0a" + bytes([len(service)]) + service if service else b""
    response = check(request, timeout=DEADLINE_SECONDS)
    return {b"": "UNKNOWN", b"\x08\x01": "SERVING", b"\x08\x02": "NOT_SERVING"}[response]


def test_the_health_service_answers_serving(server):
    with grpc.insecure_channel(server.address) as channel:
        assert health_check(channel, b"") == "SERVING"
        assert health_check(channel, b"qcal.v1.Calibration") == "SERVING"
        with pytest.raises(grpc.RpcError) as error:
            health_check(channel, b"no.such.Service")
        assert error.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-models", "0"], "--max-models must be >= 1, got 0"),
        (["--max-quantizers-per-model", "0"], "--max-quantizers-per-model must be >= 1, got 0"),
        (["--max-state-bytes", "1000"],
         "--max-state-bytes must be >= 1048576 (1 MiB), or 0 for a quarter of the memory, got 1000"),
        (["--model-ttl", "-1"], "--model-ttl must be >= 0 (seconds; 0: never), got -1"),
        (["--stream-idle-seconds", "-5"], "--stream-idle-seconds must be >= 0 (0: never), got -5"),
    ],
)
def test_limit_flags_out_of_range_exit_1(server_bin, args, message):
    import subprocess

    result = subprocess.run([str(server_bin), "--listen", "127.0.0.1:0", *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"qcal-server: {message}\n"
