"""State files against the real qcal-server, through the CLI (`qcal state save/load`,
`--histogram-layout`) and the Python API (save_state, load_state, histogram_layout): "two runs,
one table", "two servers, one table", the save/load round trip, and bad state files, each refused
with a clear message and leaving the target model exactly as it was."""

import errno
import os
import re
import stat

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import qcal
from conftest import save_npy
from qcal_server_process import QcalServerProcess

METHODS = ("max", "entropy", "mse", "percentile")
HISTOGRAM_QUANTIZERS = ("conv1._input_quantizer", "fc._input_quantizer")
WEIGHT = "fc._weight_quantizer"  # per-channel max on axis 0 (the default weight descriptor)


def batches(seed, count):
    """`count` (quantizer, array) pairs: both histogram quantizers and the weight, with different
    ranges, a NaN and an inf, exact zeros and a lone outlier, so the merged histograms must
    coarsen and the counters must add."""
    rng = np.random.default_rng(seed)
    result = []
    for i in range(count):
        scale = 1.0 + 3.0 * rng.random()
        x = (rng.standard_normal((16, 24)) * scale).astype(np.float32)
        x[0, 0] = 0.0
        if i == 1:
            x[1, 1] = np.nan
            x[2, 2] = -np.inf
        if i == count - 1:
            x[3, 3] = 40.0 * scale
        result.append((HISTOGRAM_QUANTIZERS[i % 2], x))
        result.append((WEIGHT, (rng.standard_normal((6, 5)) * scale).astype(np.float32)))
    return result


RUN_A = batches(1, 4)
RUN_B = batches(2, 4)


def record(client, name, data):
    with client.model(name, create=False) as session:
        for quantizer, array in data:
            session.record(quantizer, array)


def histograms(client, name):
    """{quantizer: (counts bytes, edges bytes, abs_max, total, nonfinite)}: equal means bit for
    bit."""
    session = client.model(name, create=False)
    result = {}
    for quantizer, stats in client.info(name)["quantizers"].items():
        if stats["calibrator"] == "histogram":
            h = session.histogram(quantizer)
            result[quantizer] = (h["counts"].tobytes(), h["edges"].tobytes(),
                                 np.float32(h["abs_max"]).tobytes(), h["total"], h["nonfinite"])
    return result


def amax_tables(client, name):
    """{method: the quantizers of the table computed by that method} (amax as float32 bytes)."""
    session = client.model(name, create=False)
    tables = {}
    for method in METHODS:
        table = session.compute_amax(method=method)["quantizers"]
        for entry in table.values():
            entry["amax"] = np.asarray(entry["amax"], dtype=np.float32).tobytes()
        tables[method] = table
    return tables


def counters(client, name):
    """The info of a model without its name."""
    info = client.info(name)
    del info["name"]
    return info


def snapshot(client, name):
    """Everything a refused load must leave alone (None when the model does not exist)."""
    try:
        info = client.info(name)
    except qcal.QcalError as error:
        assert error.code == "NOT_FOUND"
        return None
    try:
        table = client.model(name, create=False).amax_table()
    except qcal.QcalError as error:
        table = error.code
    return info, histograms(client, name), table


def same_as_one_model(client, merged, reference):
    assert counters(client, merged) == counters(client, reference)
    assert histograms(client, merged) == histograms(client, reference)
    assert amax_tables(client, merged) == amax_tables(client, reference)


def tiny_onnx():
    """A float ONNX model (opset 13): Y = Gemm(X, W)."""
    weight = helper.make_tensor("W", TensorProto.FLOAT, [3, 4], np.arange(12, dtype=np.float32))
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["X", "W"], ["Y"], name="/fc/Gemm", transB=1)], "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 3])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ---------------------------------------------------------------- the CLI


def test_two_runs_one_table_through_the_cli(cli, client, model_name, tmp_path):
    a, b, merged, whole = (f"{model_name}-{s}" for s in ("a", "b", "merged", "whole"))
    for name in (a, b, whole):
        assert cli.ok("create", name, "--histogram-layout", "mergeable") == (
            f"created model '{name}'\n")
    for run, name in ((RUN_A, a), (RUN_B, b)):
        for i, (quantizer, array) in enumerate(run):
            cli.ok("record", name, quantizer, save_npy(tmp_path, f"{name}-{i}.npy", array))
    # The model that got all the data, in another order.
    record(client, whole, list(reversed(RUN_B)) + RUN_A)

    assert cli.ok("state", "save", a, tmp_path / "a.qcalstate").startswith(
        f"saved model '{a}' to {tmp_path / 'a.qcalstate'} (")
    cli.ok("state", "save", b, tmp_path / "b.qcalstate")
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"{n}-{i}.npy" for n in (a, b) for i in range(8)] + ["a.qcalstate", "b.qcalstate"])
    out = cli.ok("state", "load", merged, tmp_path / "a.qcalstate")
    assert out == (f"loaded {tmp_path / 'a.qcalstate'} as model '{merged}': 3 quantizers, "
                   "mergeable histograms\n")
    out = cli.ok("state", "load", merged, tmp_path / "b.qcalstate", "--merge")
    assert out.startswith(f"merged {tmp_path / 'b.qcalstate'} into model '{merged}': 3 quantizers")
    same_as_one_model(client, merged, whole)
    # The loaded-from models are unchanged by the loads.
    assert client.info(a)["quantizers"][WEIGHT]["batches"] == 4


def test_create_with_a_layout_and_info_shows_it(cli, client, model_name):
    cli.ok("create", model_name, "--histogram-layout", "reference")
    assert "histograms      reference layout\n" in cli.ok("info", model_name)
    assert cli.json("info", model_name, "--format", "json")["histogram_layout"] == "reference"
    assert client.info(model_name)["histogram_layout"] == "reference"
    # --exist-ok compares the layout as part of the configuration.
    assert cli.ok("create", model_name, "--exist-ok", "--histogram-layout", "reference") == (
        f"model '{model_name}' exists with the same configuration\n")
    cli.fails("create", model_name, "--exist-ok", "--histogram-layout", "mergeable",
              code="FAILED_PRECONDITION",
              message=f"model '{model_name}' exists with histogram_layout reference, not mergeable")
    assert client.info(model_name)["histogram_layout"] == "reference"


def test_usage_errors_of_layouts_and_state(cli):
    cli.usage_error("create", "m", "--histogram-layout", "exact",
                    message="--histogram-layout: exact not in {mergeable,reference}")
    stderr = cli.usage_error("state", message="A subcommand is required")
    assert stderr.endswith("(see 'qcal state --help')\n")
    stderr = cli.usage_error("state", "load", "m", message="FILE is required")
    assert stderr.endswith("(see 'qcal state load --help')\n")
    cli.usage_error("state", "save", "m", "f", "--merge", message="--merge")


def test_save_errors_leave_no_file(cli, model_name, tmp_path):
    cli.ok("create", model_name)
    directory = tmp_path / "runs"
    directory.mkdir()
    cli.local_error("state", "save", model_name, directory,
                    message=f"cannot write '{directory}': a directory, not a regular file")
    missing = tmp_path / "nosuch" / "m.qcalstate"
    cli.local_error("state", "save", model_name, missing,
                    message=f"cannot write '{missing}': No such file or directory")
    cli.fails("state", "save", f"{model_name}-nosuch", tmp_path / "x.qcalstate",
              code="NOT_FOUND", message=f"{model_name}-nosuch")
    assert sorted(os.listdir(tmp_path)) == ["runs"]
    assert os.listdir(directory) == []


# What the server's INVALID_ARGUMENT says of each bad file (after "model 'M', LoadState: ").
BAD_FILE_MESSAGES = {
    "truncated": "truncated",
    "flipped": "corrupt",
    "empty": "not a qcal state file",
    "random": "not a qcal state file",
    "onnx": "not a qcal state file",
}


def bad_files(tmp_path, good):
    """(file, what) pairs of state files the server must refuse as INVALID_ARGUMENT."""
    middle = len(good) // 2
    flipped = bytearray(good)
    flipped[middle] ^= 0x01
    files = {
        "truncated": good[:middle],
        "flipped": bytes(flipped),
        "empty": b"",
        "random": np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "onnx": tiny_onnx(),
    }
    paths = []
    for what, content in files.items():
        path = tmp_path / f"{what}.qcalstate"
        path.write_bytes(content)
        paths.append((path, what))
    return paths


def test_bad_state_files_through_the_cli_change_nothing(cli, client, model_name, tmp_path):
    target = f"{model_name}-target"
    cli.ok("create", target)
    record(client, target, RUN_A)
    client.model(target, create=False).compute_amax(method="entropy")
    cli.ok("state", "save", target, tmp_path / "good.qcalstate")
    good = (tmp_path / "good.qcalstate").read_bytes()
    before = snapshot(client, target)
    fresh = f"{model_name}-fresh"

    missing = tmp_path / "missing.qcalstate"
    cli.local_error("state", "load", target, missing, "--merge",
                    message=f"cannot read '{missing}': No such file or directory")
    cli.local_error("state", "load", target, tmp_path, "--merge",
                    message=f"cannot read '{tmp_path}': a directory, not a regular file")
    for path, what in bad_files(tmp_path, good):
        for args in ((target, path, "--merge"), (fresh, path)):
            result = cli("state", "load", *args)
            assert result.returncode == 1, (what, result.stderr)
            assert re.match(rf"error: INVALID_ARGUMENT: model '{args[0]}', LoadState: .*"
                            f"{BAD_FILE_MESSAGES[what]}", result.stderr), (what, result.stderr)
            assert result.stdout == ""
    # Without --merge onto an existing name; with --merge into a missing model.
    cli.fails("state", "load", target, tmp_path / "good.qcalstate",
              code="ALREADY_EXISTS", message=f"model '{target}' already exists")
    cli.fails("state", "load", fresh, tmp_path / "good.qcalstate", "--merge",
              code="NOT_FOUND", message=fresh)
    assert snapshot(client, target) == before
    assert snapshot(client, fresh) is None


def test_reference_layout_merges_only_with_identical_edges(cli, client, model_name, tmp_path):
    small, large, mergeable = (f"{model_name}-{s}" for s in ("small", "large", "mergeable"))
    for name, layout in ((small, "reference"), (large, "reference"), (mergeable, "mergeable")):
        cli.ok("create", name, "--histogram-layout", layout)
    q = HISTOGRAM_QUANTIZERS[0]
    record(client, small, [(q, np.linspace(-1, 1, 100, dtype=np.float32))])
    record(client, large, [(q, np.linspace(-2, 2, 100, dtype=np.float32))])
    record(client, mergeable, [(q, np.linspace(-1, 1, 100, dtype=np.float32))])
    cli.ok("state", "save", small, tmp_path / "small.qcalstate")
    before = {name: snapshot(client, name) for name in (large, mergeable)}
    # Other edges: refused.
    cli.fails("state", "load", large, tmp_path / "small.qcalstate", "--merge",
              code="FAILED_PRECONDITION",
              message="reference-layout histograms merge only with identical edges")
    # Another layout is another configuration.
    cli.fails("state", "load", mergeable, tmp_path / "small.qcalstate", "--merge",
              code="FAILED_PRECONDITION",
              message="exists with histogram_layout mergeable, not reference")
    assert {name: snapshot(client, name) for name in (large, mergeable)} == before
    # Identical edges (the same first batch): merged, counts added.
    copy = f"{model_name}-copy"
    cli.ok("state", "load", copy, tmp_path / "small.qcalstate")
    cli.ok("state", "load", copy, tmp_path / "small.qcalstate", "--merge")
    h_copy = client.model(copy, create=False).histogram(q)
    h_small = client.model(small, create=False).histogram(q)
    assert np.array_equal(h_copy["counts"], 2 * h_small["counts"])
    assert h_copy["edges"].tobytes() == h_small["edges"].tobytes()


# ---------------------------------------------------------------- Python


def test_two_servers_one_table_through_python(server_bin, client, model_name, tmp_path):
    with QcalServerProcess(server_bin) as other_process:
        other = qcal.Client(other_process.address, timeout=60)
        for c in (client, other):
            c.create(model_name, histogram_layout="mergeable",
                     default_input={"num_bins": 1024})
        record(client, model_name, RUN_A)
        record(other, model_name, RUN_B)
        state_a = client.save_state(model_name, tmp_path / "a.qcalstate")
        state_b = other.save_state(model_name)
    assert (tmp_path / "a.qcalstate").read_bytes() == state_a
    assert os.listdir(tmp_path) == ["a.qcalstate"]  # no temporary file left
    merged, whole = f"{model_name}-merged", f"{model_name}-whole"
    info = client.load_state(merged, tmp_path / "a.qcalstate")
    assert info["name"] == merged and info["histogram_layout"] == "mergeable"
    info = client.load_state(merged, state_b, merge=True)
    assert info["quantizers"][WEIGHT]["batches"] == 8
    client.create(whole, histogram_layout="mergeable", default_input={"num_bins": 1024})
    record(client, whole, RUN_B + RUN_A)
    same_as_one_model(client, merged, whole)


def test_round_trip_keeps_the_amax_table_onnx_and_counters(client, model_name):
    session = client.model(model_name, histogram_layout="reference")
    record(client, model_name, RUN_A)
    session.upload_onnx(tiny_onnx(), tensor_map={"fc._input_quantizer": "X"})
    table = session.compute_amax(method="percentile", percentile=99.9)
    state = client.save_state(model_name)
    assert client.save_state(model_name) == state  # saving changes nothing

    copy = f"{model_name}-copy"
    info = client.load_state(copy, state)
    assert counters(client, copy) == counters(client, model_name)
    assert info["histogram_layout"] == "reference" and info["has_onnx"] is True
    assert info["amax_method"] == "percentile"
    copied = client.model(copy, create=False).amax_table()
    del copied["model"], table["model"]
    assert copied == table
    assert histograms(client, copy) == histograms(client, model_name)
    assert amax_tables(client, copy) == amax_tables(client, model_name)


def test_bad_state_through_python_changes_nothing(client, model_name, tmp_path):
    client.create(model_name)
    record(client, model_name, RUN_B)
    good = client.save_state(model_name)
    before = snapshot(client, model_name)
    fresh = f"{model_name}-fresh"
    for path, what in bad_files(tmp_path, good):
        for name, merge in ((model_name, True), (fresh, False)):
            with pytest.raises(qcal.QcalError) as error:
                client.load_state(name, path, merge=merge)
            assert error.value.code == "INVALID_ARGUMENT", what
            assert error.value.message.startswith(f"model '{name}', LoadState: "), what
            assert BAD_FILE_MESSAGES[what] in error.value.message, what
    with pytest.raises(FileNotFoundError):
        client.load_state(model_name, tmp_path / "missing.qcalstate", merge=True)
    with pytest.raises(IsADirectoryError):
        client.load_state(model_name, tmp_path, merge=True)
    with pytest.raises(qcal.QcalError) as error:
        client.load_state(model_name, good)
    assert error.value.code == "ALREADY_EXISTS"
    with pytest.raises(qcal.QcalError) as error:
        client.load_state(fresh, good, merge=True)
    assert error.value.code == "NOT_FOUND"
    assert snapshot(client, model_name) == before
    assert snapshot(client, fresh) is None

    with pytest.raises(IsADirectoryError):
        client.save_state(model_name, tmp_path)
    with pytest.raises(FileNotFoundError):
        client.save_state(model_name, tmp_path / "nosuch" / "x.qcalstate")
    with pytest.raises(qcal.QcalError) as error:
        client.save_state(fresh)
    assert error.value.code == "NOT_FOUND"


def test_python_argument_errors(client, model_name):
    with pytest.raises(qcal.QcalError) as error:
        client.create(model_name, histogram_layout="exact")
    assert error.value.code == "INVALID_ARGUMENT"
    assert error.value.message == (
        f"model '{model_name}': histogram_layout 'exact' is not mergeable or reference")
    with pytest.raises(qcal.QcalError):
        client.model(model_name, histogram_layout="Reference")
    with pytest.raises(TypeError, match="histogram_layout must be a str"):
        client.model(model_name, histogram_layout=2)
    with pytest.raises(qcal.QcalError, match="only with create=True"):
        client.model(model_name, histogram_layout="reference", create=False)
    with pytest.raises(TypeError, match="merge must be a bool"):
        client.load_state(model_name, b"x", merge=1)
    with pytest.raises(TypeError, match="state must be a path"):
        client.load_state(model_name, 3)
    with pytest.raises(TypeError, match="path must be a path"):
        client.save_state(model_name, path=3)
    # Nothing was created by any of them.
    assert model_name not in [m["name"] for m in client.models()]


def test_paths_that_are_not_regular_files_are_refused_before_anything_is_sent(client, model_name,
                                                                              tmp_path):
    # A FIFO would block load_state forever and be replaced by save_state's rename; neither is
    # opened or replaced. (Never test this with a system path such as /dev/null.)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    client.create(model_name)
    for call in (lambda: client.load_state(f"{model_name}-loaded", fifo),
                 lambda: client.save_state(model_name, fifo),
                 lambda: client.model(model_name, create=False).export_onnx(out=fifo)):
        with pytest.raises(OSError) as error:
            call()
        assert (error.value.errno, error.value.strerror, error.value.filename) == (
            errno.EINVAL, "not a regular file", str(fifo))
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["fifo"]
    assert f"{model_name}-loaded" not in [m["name"] for m in client.models()]
    with pytest.raises(IsADirectoryError):
        client.load_state(model_name, tmp_path)
    with pytest.raises(IsADirectoryError):
        client.save_state(model_name, tmp_path)


def test_save_state_through_a_symlink_writes_its_target(client, model_name, tmp_path):
    client.create(model_name)
    record(client, model_name, RUN_A)
    target = tmp_path / "real.qcalstate"
    target.write_bytes(b"old")
    link = tmp_path / "link.qcalstate"
    link.symlink_to(target)
    data = client.save_state(model_name, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == data
    # A dangling link: its target is created, the link kept.
    target.unlink()
    assert client.save_state(model_name, link) == data
    assert link.is_symlink() and target.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["link.qcalstate", "real.qcalstate"]
    # A dangling link into a missing directory: the write's FileNotFoundError.
    lost = tmp_path / "lost.qcalstate"
    lost.symlink_to(tmp_path / "missing" / "x.qcalstate")
    with pytest.raises(FileNotFoundError):
        client.save_state(model_name, lost)
    assert lost.is_symlink()
