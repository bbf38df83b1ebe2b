"""Every bad input of the README's table, through the CLI and through the API: each gets its gRPC
status code and a clear message, and leaves the server's state as it was.

Each test starts from a model holding data, an amax table and an uploaded ONNX model (`ctx.model`)
and an empty model (`ctx.empty`), snapshots the server's state, makes the bad call, checks the
error and compares the state again.
"""

import dataclasses
import pathlib

import numpy as np
import onnx
import pytest
from onnx import helper

import qcal
from conftest import MAX_BATCH_BYTES, save_npy

Q = "conv1._input_quantizer"
OVERSIZE = np.ones(MAX_BATCH_BYTES // 4 + 1, np.float32)  # 4 bytes over the limit
UNKNOWN = "no-such-model"


@dataclasses.dataclass
class Context:
    client: object
    model: str
    empty: str
    files: dict
    tmp: pathlib.Path


def _truncated_npy(path):
    """A float32 [2, 3] .npy file missing its last element (20 of 24 data bytes)."""
    save_npy(path.parent, path.name, np.ones((2, 3), np.float32))
    data = path.read_bytes()
    path.write_bytes(data[:-4])
    return path


def _checker_refused_onnx():
    """Parses as a ModelProto, but the ONNX checker refuses it (a node of an unknown op)."""
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"])],
        "bad",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


@pytest.fixture
def ctx(client, model_name, tmp_path, onnx_models):
    model, empty = f"{model_name}-m", f"{model_name}-empty"
    session = client.model(model)
    rng = np.random.default_rng(11)
    session.record(Q, rng.normal(size=(4, 1, 8, 8)).astype(np.float32))
    session.record(Q, rng.normal(size=(2, 1, 8, 8)).astype(np.float32))
    session.record("fc._input_quantizer", np.abs(rng.normal(size=(4, 64))).astype(np.float32))
    session.compute_amax(method="max")
    session.upload_onnx(onnx_models[13])
    client.create(empty)
    files = {
        "good": save_npy(tmp_path, "good.npy", np.ones((2, 3), np.float32)),
        "truncated": _truncated_npy(tmp_path / "truncated.npy"),
        "int32": save_npy(tmp_path, "int32.npy", np.arange(6, dtype=np.int32)),
        "empty": save_npy(tmp_path, "empty.npy", np.zeros((0, 3), np.float32)),
        "scalar": save_npy(tmp_path, "scalar.npy", np.float32(2.5)),
        "oversize": save_npy(tmp_path, "oversize.npy", OVERSIZE),
        "garbage.onnx": tmp_path / "garbage.onnx",
        "refused.onnx": tmp_path / "refused.onnx",
        "opset11.onnx": onnx_models[11],
        "opset13.onnx": onnx_models[13],
        "out": tmp_path / "out.onnx",
    }
    files["garbage.onnx"].write_bytes(b"this is not an ONNX model")
    files["refused.onnx"].write_bytes(_checker_refused_onnx())
    return Context(client, model, empty, files, tmp_path)


def snapshot(ctx):
    """Everything a bad call must leave alone."""
    session = ctx.client.model(ctx.model, create=False)
    hist = session.histogram(Q)
    return {
        "models": sorted(m["name"] for m in ctx.client.models()),
        "model": ctx.client.info(ctx.model),
        "empty": ctx.client.info(ctx.empty),
        "histogram": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in hist.items()},
        "table": session.amax_table(),
        "trt": session.trt_cache(),
        "export": session.export_onnx(),  # the uploaded ONNX and stored table, unchanged
    }


@dataclasses.dataclass
class Case:
    id: str
    code: str
    message: str  # a fragment of the message
    cli: object  # ctx -> argument list, or None (no CLI form)
    api: object  # ctx -> None, raising QcalError
    api_message: str = None  # when the API's message differs from the CLI's
    # When set, the CLI refuses the arguments as a usage error (exit 2, nothing sent) with this
    # message fragment instead of the call's CODE and message.
    cli_usage: str = None


def _session(ctx, name=None):
    return ctx.client.model(name or ctx.model, create=False)


def _record_and_flush(name, quantizer, array):
    def call(ctx):
        session = _session(ctx, name(ctx) if callable(name) else name)
        session.record(quantizer, array)
        session.flush()

    return call


def _amax(**kwargs):
    return lambda ctx: _session(ctx).compute_amax(**kwargs)


CASES = [
    # --- unknown model ---------------------------------------------------------------------
    Case("unknown-model-info", "NOT_FOUND", f"unknown model '{UNKNOWN}'",
         lambda c: ["info", UNKNOWN], lambda c: c.client.info(UNKNOWN)),
    Case("unknown-model-record", "NOT_FOUND", f"unknown model '{UNKNOWN}'",
         lambda c: ["record", UNKNOWN, Q, c.files["good"]],
         _record_and_flush(UNKNOWN, Q, np.ones((2, 3), np.float32))),
    Case("unknown-model-amax", "NOT_FOUND", f"unknown model '{UNKNOWN}'",
         lambda c: ["amax", UNKNOWN, "--method", "max"],
         lambda c: _session(c, UNKNOWN).compute_amax(method="max")),
    Case("unknown-model-histogram", "NOT_FOUND", f"unknown model '{UNKNOWN}'",
         lambda c: ["histogram", UNKNOWN, Q], lambda c: _session(c, UNKNOWN).histogram(Q)),
    Case("unknown-model-export", "NOT_FOUND", f"unknown model '{UNKNOWN}'",
         lambda c: ["export", UNKNOWN, "--onnx", c.files["opset13.onnx"], "--out", c.files["out"]],
         lambda c: _session(c, UNKNOWN).export_onnx(c.files["opset13.onnx"])),
    Case("unknown-model-reset", "NOT_FOUND", f"unknown model '{UNKNOWN}'",
         lambda c: ["reset", UNKNOWN], lambda c: c.client.reset(UNKNOWN)),
    Case("unknown-model-delete", "NOT_FOUND", f"unknown model '{UNKNOWN}'",
         lambda c: ["delete", UNKNOWN], lambda c: c.client.delete(UNKNOWN)),
    Case("unknown-quantizer-histogram", "NOT_FOUND", "has no quantizer 'nope._input_quantizer'",
         lambda c: ["histogram", c.model, "nope._input_quantizer"],
         lambda c: _session(c).histogram("nope._input_quantizer")),
    # --- byte count != shape x dtype size (server-side: test_wire.py) ---------------------------
    Case("byte-count", "INVALID_ARGUMENT", ".npy data is 20 bytes, but its shape and dtype need 24",
         lambda c: ["record", c.model, Q, c.files["truncated"]],
         lambda c: _session(c)._session.record(Q, "float32", [2, 3], b"\0" * 20),
         api_message="20 data bytes, but shape x dtype (float32) needs 24"),
    # --- unknown dtype (server-side: test_wire.py) ------------------------------------------
    Case("unknown-dtype", "INVALID_ARGUMENT", "is not supported",
         lambda c: ["record", c.model, Q, c.files["int32"]],
         lambda c: _session(c).record(Q, np.arange(6, dtype=np.int32))),
    Case("unknown-dtype-name", "INVALID_ARGUMENT", "unsupported dtype 'int8'", None,
         lambda c: _session(c)._session.record(Q, "int8", [2], b"\0\0")),
    # --- empty tensor ---------------------------------------------------------------------
    Case("empty-tensor", "INVALID_ARGUMENT", "empty tensors are refused",
         lambda c: ["record", c.model, Q, c.files["empty"]],
         _record_and_flush(lambda c: c.model, Q, np.zeros((0, 3), np.float32))),
    # --- axis out of range: weight quantizers default to per-channel axis 0 ------------------
    Case("axis-out-of-range", "INVALID_ARGUMENT", "axis 0 is out of range for a batch of rank 0",
         lambda c: ["record", c.model, "fc._weight_quantizer", c.files["scalar"]],
         _record_and_flush(lambda c: c.model, "fc._weight_quantizer", np.float32(2.5))),
    # --- over-size batch (the server runs with --max-batch-bytes 1 MiB) ----------------------
    Case("oversize-batch", "RESOURCE_EXHAUSTED",
         f"more than the server's --max-batch-bytes {MAX_BATCH_BYTES}",
         lambda c: ["record", c.model, Q, c.files["oversize"]],
         _record_and_flush(lambda c: c.model, Q, OVERSIZE)),
    # --- ComputeAmax before any data ------------------------------------------------------
    Case("amax-before-data", "FAILED_PRECONDITION", "has no recorded data yet",
         lambda c: ["amax", c.empty, "--method", "max"],
         lambda c: _session(c, c.empty).compute_amax(method="max")),
    Case("export-before-onnx", "FAILED_PRECONDITION", "no ONNX model was uploaded",
         None, lambda c: _session(c, c.empty).export_onnx()),
    # --- unknown method -------------------------------------------------------------------
    Case("unknown-method", "INVALID_ARGUMENT", "unknown method 'kl'",
         lambda c: ["amax", c.model, "--method", "kl"], _amax(method="kl"),
         cli_usage="--method: kl not in {max,entropy,mse,percentile}"),
    Case("unknown-method-export", "INVALID_ARGUMENT", "unknown method 'kl'",
         lambda c: ["export", c.model, "--onnx", c.files["opset13.onnx"], "--out", c.files["out"],
                    "--method", "kl"],
         lambda c: _session(c).export_onnx(method="kl"),
         cli_usage="--method: kl not in {max,entropy,mse,percentile}"),
    Case("unknown-method-override", "INVALID_ARGUMENT", "unknown method 'kl'",
         None, _amax(method="max", overrides={Q: "kl"})),
    # --- percentile outside (0, 100] -------------------------------------------------------
    Case("percentile-above-100", "INVALID_ARGUMENT", "percentile 150 is outside (0, 100]",
         lambda c: ["amax", c.model, "--method", "percentile", "--percentile", "150"],
         _amax(method="percentile", percentile=150),
         cli_usage="--percentile: 150 is outside (0, 100]"),
    Case("percentile-just-above-100", "INVALID_ARGUMENT",
         "percentile 100.0001 is outside (0, 100]",  # full precision, not "100"
         lambda c: ["amax", c.model, "--method", "percentile", "--percentile", "100.0001"],
         _amax(method="percentile", percentile=100.0001),
         cli_usage="--percentile: 100.0001 is outside (0, 100]"),
    Case("percentile-negative", "INVALID_ARGUMENT", "percentile -5 is outside (0, 100]",
         lambda c: ["amax", c.model, "--method", "percentile", "--percentile", "-5"],
         _amax(method="percentile", percentile=-5),
         cli_usage="--percentile: -5 is outside (0, 100]"),
    Case("percentile-zero", "INVALID_ARGUMENT", "percentile 0 is outside (0, 100]",
         lambda c: ["amax", c.model, "--method", "percentile", "--percentile", "0"],
         _amax(method="percentile", percentile=0),
         cli_usage="--percentile: 0 is outside (0, 100]"),
    # --- a parameter the method does not use ---------------------------------------------------
    Case("percentile-with-entropy", "INVALID_ARGUMENT",
         "percentile applies only to method percentile, not 'entropy'",
         lambda c: ["amax", c.model, "--method", "entropy", "--percentile", "99"],
         _amax(method="entropy", percentile=99),
         cli_usage="--percentile applies only to --method percentile, not entropy"),
    Case("stride-with-max", "INVALID_ARGUMENT",
         "stride applies only to methods entropy and mse, not 'max'",
         lambda c: ["amax", c.model, "--method", "max", "--stride", "2"],
         _amax(method="max", stride=2),
         cli_usage="--stride applies only to --method entropy or mse, not max"),
    Case("start-bin-below-1", "INVALID_ARGUMENT", "start_bin must be >= 1, got -3",
         lambda c: ["amax", c.model, "--method", "mse", "--start-bin", "-3"],
         _amax(method="mse", start_bin=-3),
         cli_usage="--start-bin: -3 is below 1 (leave the option out for the default, 128)"),
    Case("export-percentile-without-method", "INVALID_ARGUMENT",
         "percentile given without a method",
         lambda c: ["export", c.model, "--onnx", c.files["opset13.onnx"], "--out", c.files["out"],
                    "--percentile", "99"],
         lambda c: _session(c).export_onnx(percentile=99),
         cli_usage="--percentile needs --method"),
    # --- names that are not names (refused by the client: nothing is sent) ---------------------
    # A str argument "\udcff\udcfe" reaches the CLI as the bytes ff fe (surrogateescape).
    Case("model-name-not-utf8", "INVALID_ARGUMENT", "is not valid UTF-8",
         lambda c: ["info", "\udcff\udcfe"], lambda c: c.client.info("\udcff\udcfe")),
    Case("quantizer-name-not-utf8", "INVALID_ARGUMENT", "is not valid UTF-8",
         lambda c: ["record", c.model, "q\udcff", c.files["good"]],
         lambda c: _session(c).record("q\udcff", np.ones(2, np.float32))),
    Case("model-name-empty", "INVALID_ARGUMENT", "model name is empty",
         lambda c: ["create", ""], lambda c: c.client.create("")),
    Case("model-name-too-long", "INVALID_ARGUMENT", "is 1025 bytes long",
         lambda c: ["create", "m" * 1025], lambda c: c.client.create("m" * 1025)),
    Case("quantizer-name-with-newline", "INVALID_ARGUMENT",
         "contains control character 0x0a at offset 1",
         lambda c: ["record", c.model, "q\nfake: 3f800000", c.files["good"]],
         lambda c: _session(c).record("q\nfake: 3f800000", np.ones(2, np.float32))),
    Case("quantizer-name-with-tab", "INVALID_ARGUMENT", "contains control character 0x09",
         lambda c: ["histogram", c.model, "q\t"], lambda c: _session(c).histogram("q\t")),
    Case("model-name-with-del", "INVALID_ARGUMENT", "contains control character 0x7f",
         lambda c: ["reset", "m\x7f"], lambda c: c.client.reset("m\x7f")),
    # --- start_bin beyond the histogram ----------------------------------------------------
    # (the message names the quantizer and its bin count, which growth may have raised past 2048)
    Case("start-bin-beyond-histogram", "INVALID_ARGUMENT",
         "start_bin 10000 is beyond the histogram's",
         lambda c: ["amax", c.model, "--method", "entropy", "--start-bin", "10000"],
         _amax(method="entropy", start_bin=10000)),
    Case("start-bin-beyond-histogram-mse", "INVALID_ARGUMENT", "mse needs start_bin < bins",
         lambda c: ["amax", c.model, "--method", "mse", "--start-bin", "10000"],
         _amax(method="mse", start_bin=10000)),
    # --- malformed ONNX --------------------------------------------------------------------
    Case("malformed-onnx", "INVALID_ARGUMENT", "does not parse as a ModelProto",
         lambda c: ["export", c.model, "--onnx", c.files["garbage.onnx"], "--out", c.files["out"]],
         lambda c: _session(c).upload_onnx(c.files["garbage.onnx"])),
    Case("onnx-refused-by-checker", "INVALID_ARGUMENT", "ONNX checker refuses the model",
         lambda c: ["export", c.model, "--onnx", c.files["refused.onnx"], "--out", c.files["out"]],
         lambda c: _session(c).export_onnx(c.files["refused.onnx"])),
    Case("empty-onnx", "INVALID_ARGUMENT", "ONNX model is empty (0 bytes)",
         None, lambda c: _session(c).upload_onnx(b"")),
    # --- too-old ONNX ----------------------------------------------------------------------
    Case("onnx-opset-11", "INVALID_ARGUMENT", "ONNX model has opset 11; opset 13 is the minimum",
         lambda c: ["export", c.model, "--onnx", c.files["opset11.onnx"], "--out", c.files["out"]],
         lambda c: _session(c).upload_onnx(c.files["opset11.onnx"])),
]


@pytest.mark.parametrize("case", [c for c in CASES if c.cli], ids=lambda c: c.id)
def test_bad_input_through_the_cli(case, ctx, cli):
    before = snapshot(ctx)
    if case.cli_usage:
        cli.usage_error(*case.cli(ctx), message=case.cli_usage)
    else:
        cli.fails(*case.cli(ctx), code=case.code, message=case.message)
    assert snapshot(ctx) == before
    assert not ctx.files["out"].exists()  # a failed export writes nothing


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_through_the_api(case, ctx):
    before = snapshot(ctx)
    with pytest.raises(qcal.QcalError) as error:
        case.api(ctx)
    assert error.value.code == case.code
    assert (case.api_message or case.message) in error.value.message
    assert str(error.value).startswith(f"{case.code}: ")
    assert snapshot(ctx) == before
