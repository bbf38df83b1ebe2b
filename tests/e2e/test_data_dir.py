"""--data-dir against the real qcal-server: what survives what (README, "What survives what").

Every test starts its own servers on its own directory and stops them for real: `kill -9`
(SIGKILL) for a crash, SIGTERM for a shutdown. Restored models are compared bit for bit (float32
bytes) with what the first server had: stored and recomputed amax tables, histograms, calibrator
states and the uploaded ONNX. A full disk is made two ways: a file-size limit on the server's
process (RLIMIT_FSIZE, which works everywhere) and a small tmpfs (needs root; skipped, loudly,
when the mount is refused)."""

import hashlib
import os
import pathlib
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import grpc
import numpy as np
import pytest

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
from conftest import REPO
from qcal_server_process import QcalServerProcess

GEMM_ONNX = REPO / "server" / "onnx" / "testdata" / "gemm_transb0.onnx"
V1_FILES = REPO / "server" / "storage" / "testdata"
IN, W = "fc._input_quantizer", "fc._weight_quantizer"
METHODS = ("percentile", "entropy", "max", "mse")  # mse last: the table the model keeps


def model_file_name(model):
    """storage/model_file_name.h, written again: escaped prefix, 32 hex of SHA-256, suffix."""
    raw = model.encode()
    prefix = ""
    for i, byte in enumerate(raw):
        c = chr(byte)
        plain = (c.isascii() and c.isalnum()) or c in "_-" or (c == "." and i > 0)
        piece = c if plain else f"%{byte:02X}"
        if len(prefix) + len(piece) > 128:
            break
        prefix += piece
    return f"{prefix}.{hashlib.sha256(raw).hexdigest()[:32]}.qcalstate"


class Server(QcalServerProcess):
    """A qcal-server on `data_dir`, with a stub, that can be killed."""

    def __init__(self, server_bin, data_dir, *args, preexec_fn=None):
        super().__init__(server_bin, "--data-dir", str(data_dir), "--log-level", "debug", *args)
        self.preexec_fn = preexec_fn
        self.channel = None

    def start(self):
        if self.preexec_fn is None:
            super().start()
        else:  # QcalServerProcess.start, with the child's limits set before exec
            self._stderr = tempfile.TemporaryFile(mode="w+")
            self._process = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                             stderr=self._stderr, text=True,
                                             preexec_fn=self.preexec_fn)
            line = self._process.stdout.readline().strip()
            assert line.startswith("qcal-server listening on "), self.stderr()
            self.address = line.split()[3]
        self.channel = grpc.insecure_channel(self.address)
        self.stub = pb_grpc.CalibrationStub(self.channel)
        return self

    def kill9(self):
        self.channel.close()
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=30)
        self._process.stdout.close()
        assert self._process.returncode == -signal.SIGKILL

    def sigterm(self):
        """SIGTERM; the exit code."""
        self.channel.close()
        self._process.send_signal(signal.SIGTERM)
        code = self._process.wait(timeout=60)
        self._process.stdout.close()
        return code

    def wait_for_log(self, pattern, timeout=60):
        """Blocks until stderr matches `pattern` (an event, not a measured time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.stderr()):
                return
            time.sleep(0.05)
        raise AssertionError(f"no log line matching {pattern!r}:\n{self.stderr()}")

    def stop(self):
        if self.channel is not None:
            self.channel.close()
        super().stop()


def batch(quantizer, array):
    array = np.ascontiguousarray(array, dtype=np.float32)
    return pb.RecordRequest(quantizer=quantizer.encode(),
                            header=pb.TensorHeader(dtype=pb.DTYPE_FLOAT32, shape=array.shape),
                            data=array.tobytes())


def record(stub, model, batches):
    messages = [pb.RecordRequest(model=model.encode())] + [batch(q, a) for q, a in batches]
    stub.Record(iter(messages), timeout=60)


def data(seed, count=3):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        scale = 1.0 + 2.0 * rng.random()
        x = (rng.standard_normal((16, 6)) * scale).astype(np.float32)
        x[0, 0] = 0.0
        x[1, 1] = 25.0 * scale if i == count - 1 else x[1, 1]
        out.append((IN, x))
        out.append((W, (rng.standard_normal((4, 6)) * scale).astype(np.float32)))
    return out


LAYOUTS = {"team/mergeable": pb.HISTOGRAM_LAYOUT_MERGEABLE,
           "team/reference": pb.HISTOGRAM_LAYOUT_REFERENCE}


def populate(stub, name, layout, seed):
    stub.CreateModel(pb.CreateModelRequest(model=name.encode(), histogram_layout=layout))
    record(stub, name, data(seed))
    onnx_bytes = GEMM_ONNX.read_bytes()
    stub.UploadOnnx(iter([pb.UploadOnnxRequest(model=name.encode(), data=onnx_bytes)]))
    return compute_all(stub, name)


def compute_all(stub, name):
    """{method: {quantizer: amax float32 bytes}}, computing (and storing) each in METHODS order."""
    out = {}
    for method in METHODS:
        table = stub.ComputeAmax(pb.ComputeAmaxRequest(model=name.encode(), method=method.encode()))
        out[method] = {q.name: np.asarray(q.amax, np.float32).tobytes() for q in table.table.quantizers}
    return out


def state_of(stub, name):
    """What must survive, read without changing the model: the stored table, the histograms, the
    calibrator states and counters, the ONNX bytes and tensor map (from SaveState)."""
    try:
        stored = stub.GetAmaxTable(pb.GetAmaxTableRequest(model=name.encode()))
    except grpc.RpcError as error:  # no table computed yet
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        stored = pb.AmaxTableResponse()
    histogram = stub.GetHistogram(pb.GetHistogramRequest(model=name.encode(), quantizer=IN.encode()))
    chunks = b"".join(c.data for c in stub.SaveState(pb.SaveStateRequest(model=name.encode())))
    file = pb.StateFile()
    file.ParseFromString(chunks)
    state = pb.ModelState()
    state.ParseFromString(file.model_state)
    return {
        "stored": stored.table.SerializeToString(deterministic=True),
        "stored_amax": {q.name: np.asarray(q.amax, np.float32).tobytes()
                        for q in stored.table.quantizers},
        "histogram": histogram.SerializeToString(deterministic=True),
        "quantizers": [q.SerializeToString(deterministic=True) for q in state.quantizers],
        "layout": state.histogram_layout,
        "onnx": state.onnx,
        "tensor_map": [e.SerializeToString() for e in state.tensor_map],
        "amax_table": state.amax_table.SerializeToString(deterministic=True),
    }


def test_kill_9_after_commit_restores_every_model_bit_for_bit(server_bin, tmp_path):
    data_dir = tmp_path / "data"
    first = Server(server_bin, data_dir, "--commit-interval-seconds", "3600").start()
    computed, before = {}, {}
    for seed, (name, layout) in enumerate(LAYOUTS.items()):
        computed[name] = populate(first.stub, name, layout, seed)
        before[name] = state_of(first.stub, name)
        first.stub.Commit(pb.CommitRequest(model=name.encode()))
    assert before["team/mergeable"]["onnx"] == GEMM_ONNX.read_bytes()
    files = sorted(p.name for p in data_dir.iterdir() if p.name.endswith(".qcalstate"))
    assert files == sorted(model_file_name(n) for n in LAYOUTS)
    first.kill9()

    second = Server(server_bin, data_dir).start()
    try:
        assert "restored 2 models" in second.stderr()
        listed = second.stub.ListModels(pb.ListModelsRequest())
        assert sorted(m.name for m in listed.models) == sorted(LAYOUTS)
        for name in LAYOUTS:
            assert state_of(second.stub, name) == before[name], name
            assert before[name]["stored_amax"] == computed[name]["mse"]
            assert compute_all(second.stub, name) == computed[name], name
    finally:
        second.stop()


def test_sigterm_commits_what_was_applied_and_kill_9_loses_only_what_came_after(server_bin,
                                                                               tmp_path):
    data_dir = tmp_path / "data"
    first = Server(server_bin, data_dir, "--commit-interval-seconds", "3600").start()
    first.stub.CreateModel(pb.CreateModelRequest(model=b"m"))
    record(first.stub, "m", data(1))
    applied = state_of(first.stub, "m")
    # No Commit: SIGTERM drains, commits and exits 0, saying what it wrote.
    assert first.sigterm() == 0
    assert "committed 1 changed models: 'm'" in first.stderr()

    second = Server(server_bin, data_dir, "--commit-interval-seconds", "3600").start()
    assert state_of(second.stub, "m") == applied
    # Applied after the last commit, then a crash: lost, exactly that and nothing more.
    record(second.stub, "m", data(2))
    assert state_of(second.stub, "m") != applied
    second.kill9()
    third = Server(server_bin, data_dir).start()
    try:
        assert state_of(third.stub, "m") == applied
    finally:
        third.stop()


def test_the_committer_writes_changed_models_each_interval(server_bin, tmp_path):
    data_dir = tmp_path / "data"
    first = Server(server_bin, data_dir, "--commit-interval-seconds", "1").start()
    first.stub.CreateModel(pb.CreateModelRequest(model=b"p"))
    record(first.stub, "p", data(3))
    applied = state_of(first.stub, "p")
    first.wait_for_log(r"committed model 'p'")
    first.kill9()
    second = Server(server_bin, data_dir).start()
    try:
        assert state_of(second.stub, "p") == applied
    finally:
        second.stop()


def test_create_upload_load_merge_and_reset_are_durable_when_they_return(server_bin, tmp_path):
    """Each structural call, then kill -9 at once (no Commit, no interval: 3600 s): the restarted
    server holds what the call did. A crash right after CreateModel once lost the model, and the
    clients resending their batches found NOT_FOUND (tests/e2e/test_kill9.py)."""
    data_dir = tmp_path / "data"
    args = ("--commit-interval-seconds", "3600")

    def crash_and_restart(server):
        server.kill9()
        return Server(server_bin, data_dir, *args).start()

    server = Server(server_bin, data_dir, *args).start()
    try:
        server.stub.CreateModel(pb.CreateModelRequest(model=b"created"))
        server = crash_and_restart(server)
        assert server.stub.GetModel(pb.GetModelRequest(model=b"created")).name == "created"

        server.stub.UploadOnnx(iter([pb.UploadOnnxRequest(model=b"created",
                                                          data=GEMM_ONNX.read_bytes())]))
        server = crash_and_restart(server)
        assert server.stub.GetModel(pb.GetModelRequest(model=b"created")).has_onnx

        # A state file loaded as a new model, and merged into an existing one.
        server.stub.CreateModel(pb.CreateModelRequest(model=b"source"))
        record(server.stub, "source", data(7))
        server.stub.Commit(pb.CommitRequest(model=b"source"))
        source = state_of(server.stub, "source")
        saved = b"".join(c.data for c in server.stub.SaveState(
            pb.SaveStateRequest(model=b"source")))
        server.stub.LoadState(iter([pb.LoadStateRequest(model=b"loaded"),
                                    pb.LoadStateRequest(data=saved)]))
        server.stub.LoadState(iter([pb.LoadStateRequest(model=b"created", merge=True),
                                    pb.LoadStateRequest(data=saved)]))
        merged = state_of(server.stub, "created")
        assert merged["quantizers"] == source["quantizers"]
        server = crash_and_restart(server)
        assert state_of(server.stub, "loaded")["quantizers"] == source["quantizers"]
        assert state_of(server.stub, "created") == merged

        server.stub.ResetModel(pb.ResetModelRequest(model=b"source"))
        server = crash_and_restart(server)
        info = server.stub.GetModel(pb.GetModelRequest(model=b"source"))
        assert [q.spec.name for q in info.quantizers] == []
    finally:
        server.stop()


def test_sigterm_lets_a_running_stream_finish_and_refuses_new_ones(server_bin, tmp_path):
    data_dir = tmp_path / "data"
    first = Server(server_bin, data_dir, "--commit-interval-seconds", "3600",
                   "--drain-seconds", "60").start()
    first.stub.CreateModel(pb.CreateModelRequest(model=b"d"))
    batches = data(4)
    release = threading.Event()

    def messages():
        yield pb.RecordRequest(model=b"d")
        yield batch(*batches[0])
        release.wait(60)  # the stream is in flight when SIGTERM comes
        for b in batches[1:]:
            yield batch(*b)

    result = {}
    stream = threading.Thread(target=lambda: result.update(r=first.stub.Record(messages(),
                                                                               timeout=120)))
    stream.start()
    # The first batch has arrived once the model holds a quantizer (awaited, not timed).
    deadline = time.monotonic() + 60
    while not first.stub.GetModel(pb.GetModelRequest(model=b"d")).quantizers:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first._process.send_signal(signal.SIGTERM)
    first.wait_for_log(r"draining: 1 calls in flight")
    with pytest.raises(grpc.RpcError) as refused:
        record(first.stub, "d", batches[:1])
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in refused.value.details()
    release.set()
    stream.join(120)
    assert result["r"].batches == len(batches)
    assert first._process.wait(timeout=60) == 0
    first.channel.close()
    first._process.stdout.close()
    assert "committed 1 changed models: 'd'" in first.stderr()

    # The same data in a fresh model, for comparison.
    second = Server(server_bin, data_dir).start()
    try:
        second.stub.CreateModel(pb.CreateModelRequest(model=b"ref"))
        record(second.stub, "ref", batches)
        got, want = state_of(second.stub, "d"), state_of(second.stub, "ref")
        assert got["quantizers"] == want["quantizers"]
    finally:
        second.stop()


def test_a_second_server_on_the_same_data_dir_is_refused(server_bin, tmp_path):
    first = Server(server_bin, tmp_path / "data").start()
    try:
        second = subprocess.run([str(server_bin), "--listen", "127.0.0.1:0", "--data-dir",
                                 str(tmp_path / "data")], capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 1
        assert (f"--data-dir {tmp_path / 'data'} is in use by another qcal-server "
                f"(pid {first._process.pid}, holding") in second.stderr
    finally:
        first.stop()


def test_a_corrupt_file_refuses_its_model_only_and_stays(server_bin, tmp_path):
    data_dir = tmp_path / "data"
    first = Server(server_bin, data_dir).start()
    for name in ("good", "bad"):
        first.stub.CreateModel(pb.CreateModelRequest(model=name.encode()))
        record(first.stub, name, data(5))
    good = state_of(first.stub, "good")
    assert first.sigterm() == 0
    bad_file = data_dir / model_file_name("bad")
    corrupt = bytearray(bad_file.read_bytes())
    corrupt[-10] ^= 0x01
    bad_file.write_bytes(bytes(corrupt))
    (data_dir / (".qcaltmp-" + model_file_name("good") + ".00ff")).write_bytes(b"half")

    second = Server(server_bin, data_dir).start()
    try:
        log = second.stderr()
        assert f"refusing {bad_file}: the state file is corrupt or truncated" in log
        assert "the file stays" in log
        assert "left by a write that did not finish" in log
        assert state_of(second.stub, "good") == good
        with pytest.raises(grpc.RpcError) as missing:
            second.stub.GetModel(pb.GetModelRequest(model=b"bad"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        # A new model of that name would overwrite the refused file at its first commit.
        with pytest.raises(grpc.RpcError) as taken:
            second.stub.CreateModel(pb.CreateModelRequest(model=b"bad"))
        assert taken.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"its file {bad_file} was refused when the server started" in taken.value.details()
        assert bad_file.read_bytes() == bytes(corrupt)
        assert not any(p.name.startswith(".qcaltmp-") for p in data_dir.iterdir())
        # Moved away, the name is free again.
        bad_file.rename(tmp_path / "kept")
        second.stub.CreateModel(pb.CreateModelRequest(model=b"bad"))
    finally:
        second.stop()


def test_a_file_a_limit_refuses_at_start_is_not_overwritten_by_a_new_model(server_bin, tmp_path):
    """A model over a limit lowered since (--max-quantizers-per-model) is refused at start; a new
    model of its name would replace the kept file at its first commit, so it is refused too."""
    data_dir = tmp_path / "data"
    first = Server(server_bin, data_dir).start()
    first.stub.CreateModel(pb.CreateModelRequest(model=b"big"))
    record(first.stub, "big", data(8))  # two quantizers
    assert first.sigterm() == 0
    file = data_dir / model_file_name("big")
    kept = file.read_bytes()

    second = Server(server_bin, data_dir, "--max-quantizers-per-model", "1").start()
    try:
        assert f"refusing {file}:" in second.stderr()
        with pytest.raises(grpc.RpcError) as taken:
            second.stub.CreateModel(pb.CreateModelRequest(model=b"big"))
        assert taken.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "was refused when the server started" in taken.value.details()
        assert "--max-quantizers-per-model" in taken.value.details()
        assert file.read_bytes() == kept
    finally:
        assert second.sigterm() == 0
    assert file.read_bytes() == kept


def test_a_symbolic_link_named_like_a_state_file_is_skipped_and_said(server_bin, tmp_path):
    """Never followed (two names could share one file, or one point outside the locked and
    counted directory), and logged, so a missing model is explained."""
    data_dir = tmp_path / "data"
    first = Server(server_bin, data_dir, "--commit-interval-seconds", "3600").start()
    first.stub.CreateModel(pb.CreateModelRequest(model=b"linked"))
    first.kill9()
    name = model_file_name("linked")
    outside = tmp_path / name
    (data_dir / name).rename(outside)
    (data_dir / name).symlink_to(outside)
    second = Server(server_bin, data_dir).start()
    try:
        assert f"--data-dir: skipping {data_dir}/{name}: not a regular file" in second.stderr()
        assert list(second.stub.ListModels(pb.ListModelsRequest()).models) == []
    finally:
        second.stop()


def test_files_of_format_version_1_restore_with_their_amax(server_bin, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for model, file in (("v1/mergeable", "v1_mergeable.qcalstate"),
                        ("v1/reference", "v1_reference.qcalstate")):
        shutil.copy(V1_FILES / file, data_dir / model_file_name(model))
    weight = np.array([0x3fa3c9be, 0x3fa17aff, 0x3fb5dc6d, 0x3fb2ed7a], np.uint32).tobytes()
    want = {"v1/mergeable": np.array([0x4105a000], np.uint32).tobytes(),
            "v1/reference": np.array([0x41059f51], np.uint32).tobytes()}
    server = Server(server_bin, data_dir).start()
    try:
        for model, input_bits in want.items():
            assert state_of(server.stub, model)["stored_amax"] == {IN: input_bits, W: weight}
            table = server.stub.ComputeAmax(pb.ComputeAmaxRequest(
                model=model.encode(), method=b"percentile", percentile=99.9))
            assert {q.name: np.asarray(q.amax, np.float32).tobytes()
                    for q in table.table.quantizers} == {IN: input_bits, W: weight}
    finally:
        server.stop()


def big_weights():
    """A per-channel max quantizer with 200000 channels: about 800 KB of state."""
    return [("big._weight_quantizer", np.linspace(0.5, 2.0, 200000, dtype=np.float32).reshape(200000, 1))]


def fails_to_commit_keeping_the_last_good_state(server, data_dir, reason,
                                                code=grpc.StatusCode.UNAVAILABLE):
    """Commits a small model, grows it past what the disk takes: Commit fails with `code` naming
    the file and `reason`, the previous file stays whole, no temporary file is left."""
    stub = server.stub
    stub.CreateModel(pb.CreateModelRequest(model=b"full"))
    record(stub, "full", data(6))
    good = state_of(stub, "full")
    stub.Commit(pb.CommitRequest(model=b"full"))
    file = data_dir / model_file_name("full")
    good_bytes = file.read_bytes()
    record(stub, "full", big_weights())
    with pytest.raises(grpc.RpcError) as error:
        stub.Commit(pb.CommitRequest(model=b"full"))
    assert error.value.code() == code
    assert f"model 'full': cannot write {file}" in error.value.details()
    assert reason in error.value.details()
    assert "the previous file stays" in error.value.details()
    assert file.read_bytes() == good_bytes
    assert not any(p.name.startswith(".qcaltmp-") for p in data_dir.iterdir())
    # The server goes on serving; what it holds is not lost until it stops.
    assert stub.GetModel(pb.GetModelRequest(model=b"full")).quantizers
    return good


def limit_file_size():
    """The server's files may not pass 256 KiB (RLIMIT_FSIZE, set in the child before exec):
    a full disk that works everywhere, root or not."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))


def test_a_file_size_limit_fails_commit_cleanly_and_keeps_the_last_good_state(server_bin,
                                                                             tmp_path):
    data_dir = tmp_path / "data"

    server = Server(server_bin, data_dir, "--commit-interval-seconds", "3600",
                    preexec_fn=limit_file_size).start()
    good = fails_to_commit_keeping_the_last_good_state(server, data_dir, "File too large")
    server.kill9()
    again = Server(server_bin, data_dir).start()
    try:
        assert state_of(again.stub, "full") == good
    finally:
        again.stop()


def guarded(call, limit=120):
    """call() in a thread: what it returned or raised. Fails the test, rather than hanging it,
    when it is still blocked after `limit` seconds (a generous guard, not a measured time)."""
    result = {}

    def run():
        try:
            result["value"] = call()
        except Exception as error:  # noqa: BLE001 (handed back to the test)
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"still blocked after {limit} s: a hang"
    return result


def test_a_session_on_a_server_that_cannot_write_fails_at_its_reconnect_deadline(server_bin,
                                                                                tmp_path):
    # The server answers (its Record streams get through) but every Commit fails UNAVAILABLE:
    # commit(), and a record() waiting for a Commit to free its queue, raise the server's reason
    # once the session's reconnect deadline has passed, never retrying for ever.
    import qcal

    data_dir = tmp_path / "data"

    server = Server(server_bin, data_dir, "--commit-interval-seconds", "3600",
                    preexec_fn=limit_file_size).start()
    try:
        client = qcal.Client(server.address)
        session = client.model("cf", reconnect_deadline=2)
        (quantizer, weights), = big_weights()  # a state larger than a file may be
        session.record(quantizer, weights)
        session.flush()  # applied: only the write fails
        file = data_dir / model_file_name("cf")
        result = guarded(session.commit)
        error = result.get("error")
        assert isinstance(error, qcal.QcalError), result
        assert error.code == "UNAVAILABLE"
        assert "reconnect_deadline of 2s" in error.message
        assert f"cannot write {file}" in error.message
        assert "File too large" in error.message
        assert session.stats()["applied_batches"] == 1

        # A queue of two tensors: the third record() waits for a Commit to free the first two.
        small = client.model("cf", reconnect_deadline=2, max_queue_bytes=2 * 4096)
        tensor = np.ones(1024, np.float32)

        def record_until_it_fails():
            for _ in range(100):
                small.record(IN, tensor)

        result = guarded(record_until_it_fails)
        error = result.get("error")
        assert isinstance(error, qcal.QcalError), result
        assert error.code == "UNAVAILABLE"
        assert "File too large" in error.message
        assert server.stub.GetModel(pb.GetModelRequest(model=b"cf")).quantizers
    finally:
        server.stop()


def test_the_data_dir_quota_fails_commit_naming_the_flag(server_bin, tmp_path):
    data_dir = tmp_path / "data"
    server = Server(server_bin, data_dir, "--commit-interval-seconds", "3600",
                    "--max-data-dir-bytes", "100000").start()
    try:
        fails_to_commit_keeping_the_last_good_state(
            server, data_dir, "more than --max-data-dir-bytes 100000",
            grpc.StatusCode.RESOURCE_EXHAUSTED)
    finally:
        server.stop()


def test_a_full_tmpfs_fails_commit_cleanly_and_keeps_the_last_good_state(server_bin, tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                 capture_output=True, text=True)
        refused = mounted.stderr.strip() if mounted.returncode != 0 else None
    except OSError as error:  # no mount(8)
        refused = str(error)
    if refused is not None:
        pytest.skip("SKIPPED LOUDLY: cannot mount a tmpfs here (needs root): "
                    f"{refused}; the file-size-limit test covers a full disk")
    try:
        data_dir = mount / "data"
        server = Server(server_bin, data_dir, "--commit-interval-seconds", "3600").start()
        try:
            good = fails_to_commit_keeping_the_last_good_state(server, data_dir,
                                                               "No space left on device")
        finally:
            server.kill9()
        again = Server(server_bin, data_dir).start()
        try:
            assert state_of(again.stub, "full") == good
        finally:
            again.stop()
    finally:
        subprocess.run(["umount", str(mount)], check=False)
