"""The Python API (the C++ client underneath) against the real qcal-server: torch hooks to QDQ
ONNX, with values checked against what was sent."""

import struct

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import qcal
import qcal.torch


def test_calibrate_compute_and_export_through_the_api(client, model_name, onnx_models, tmp_path):
    net = onnx_models["net"]
    session = client.model(model_name)
    torch.manual_seed(5)
    batches = [torch.randn(16, 1, 8, 8) for _ in range(3)]
    with torch.no_grad(), qcal.torch.calibrate(net, session):
        for batch in batches:
            net(batch)

    info = session.info()
    # The pool's input too, as pytorch-quantization's QuantMaxPool2d (issue 12).
    assert set(info["quantizers"]) == {
        "conv1._input_quantizer",
        "pool._input_quantizer",
        "fc._input_quantizer",
    }
    assert info["quantizers"]["pool._input_quantizer"]["elements"] == 3 * 16 * 4 * 64
    assert info["quantizers"]["conv1._input_quantizer"]["batches"] == 3
    assert info["quantizers"]["conv1._input_quantizer"]["elements"] == 3 * 16 * 64
    assert info["quantizers"]["fc._input_quantizer"]["elements"] == 3 * 16 * 64

    conv_max = max(float(b.abs().max()) for b in batches)
    table = session.compute_amax(method="max")
    assert np.float32(table["quantizers"]["conv1._input_quantizer"]["amax"]) == np.float32(conv_max)
    assert session.amax_table() == table
    bits = struct.pack(">f", np.float32(conv_max) / np.float32(127)).hex()
    assert f"conv1._input_quantizer: {bits}" in session.trt_cache().splitlines()

    hist = session.histogram("conv1._input_quantizer")
    assert hist["counts"].dtype == np.uint64 and hist["edges"].dtype == np.float32
    assert len(hist["edges"]) == len(hist["counts"]) + 1
    assert int(hist["counts"].sum()) == hist["total"] == 3 * 16 * 64
    assert hist["abs_max"] == np.float32(conv_max)

    out = tmp_path / "qdq.onnx"
    qdq_bytes = session.export_onnx(onnx_models[13], out=out, method="entropy")
    assert out.read_bytes() == qdq_bytes
    entropy = session.amax_table()
    assert entropy["method"] == "entropy"
    model = onnx.load_from_string(qdq_bytes)
    onnx.checker.check_model(model)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    (q_input,) = [n for n in quantize if n.input[0] == "input"]
    amax = np.float32(entropy["quantizers"]["conv1._input_quantizer"]["amax"])
    assert inits[q_input.input[1]] == amax / np.float32(127)

    # Explain is opt-in: empty unless asked; then one dict per node input considered.
    assert session.last_export_explain == []
    assert session.export_onnx(explain=True) == qdq_bytes
    first = session.last_export_explain[0]
    assert first == {
        "node": "/conv1/Conv", "op_type": "Conv", "input": 0, "tensor": "input",
        "decision": "quantized", "quantizer": "conv1._input_quantizer",
        "rule": "weighted-op input", "reason": first["reason"],
    }
    assert first["reason"].startswith(f"per-tensor int8, amax {amax:g}")
    with pytest.raises(TypeError, match="explain must be a bool"):
        session.export_onnx(explain=1)

    # Without a method the stored (entropy) table is used again: the same bytes.
    assert session.export_onnx() == qdq_bytes
    assert session.last_export_explain == []
    assert session.info()["has_onnx"] is True


def test_overrides_and_parameters(client, model_name):
    session = client.model(model_name)
    rng = np.random.default_rng(7)
    session.record("a._input_quantizer", rng.laplace(size=4096).astype(np.float32))
    session.record("b._input_quantizer", rng.laplace(size=4096).astype(np.float32))
    table = session.compute_amax(
        method="percentile",
        percentile=99.0,
        overrides={"b._input_quantizer": {"method": "mse", "start_bin": 64, "stride": 2}},
    )
    assert table["quantizers"]["a._input_quantizer"]["method"] == "percentile"
    assert table["quantizers"]["b._input_quantizer"]["method"] == "mse"
    short = session.compute_amax(method="entropy", overrides={"b._input_quantizer": "max"})
    assert short["quantizers"]["b._input_quantizer"]["method"] == "max"
    assert np.float32(short["quantizers"]["b._input_quantizer"]["amax"]) == session.histogram(
        "b._input_quantizer"
    )["abs_max"]


def test_model_management(client, model_name):
    created = client.create(model_name)
    assert created["name"] == model_name and created["quantizers"] == {}
    assert model_name in [m["name"] for m in client.models()]
    session = client.model(model_name)  # exists: kept as is
    session.record("x._input_quantizer", np.arange(6, dtype=np.float64).reshape(2, 3))
    session.flush()
    assert client.info(model_name)["quantizers"]["x._input_quantizer"]["elements"] == 6
    assert client.reset(model_name)["amax_method"] is None
    client.delete(model_name)
    with pytest.raises(qcal.QcalError) as error:
        client.info(model_name)
    assert error.value.code == "NOT_FOUND"
    assert model_name in error.value.message


def test_client_counts_match_the_server_after_a_refused_batch(client, model_name):
    # Issue 8: 10 good batches, 1 the server refuses, 5 more. The server holds 10; the client
    # used to say applied 0 and dropped 0, and the 5 sent after the refused one vanished. The
    # refused stream's status now says what it applied, so after any error the client's applied
    # and dropped counts add up to what it recorded, and applied equals the server's count.
    session = client.model(model_name)
    weight = "fc._weight_quantizer"  # per-channel on axis 0: the channel count must not change
    for i in range(10):
        session.record(weight, np.full((4, 3), i + 1, np.float32))
    session.record(weight, np.ones((5, 3), np.float32))  # 5 channels, not 4: refused
    for i in range(5):
        session.record(weight, np.full((4, 3), 100 + i, np.float32))
    with pytest.raises(qcal.QcalError) as error:
        session.flush()
    assert error.value.code == "INVALID_ARGUMENT"
    assert "the batch has 5 channels on axis 0 but earlier batches had 4" in error.value.message
    stats = session.stats()
    server = session.info()["quantizers"][weight]
    assert server["batches"] == 10
    assert stats["applied_batches"] == 10
    assert stats["applied_elements"] == 10 * 12
    assert stats["applied_bytes"] == 10 * 12 * 4
    assert stats["applied_batches"] + stats["dropped_batches"] == 16
    # The session goes on: later batches count as before.
    session.record(weight, np.full((4, 3), 7, np.float32))
    session.flush()
    assert session.stats()["applied_batches"] == 11
    assert session.info()["quantizers"][weight]["batches"] == 11


def _server_state(client, session):
    """What a failed export must leave alone: the model info (has_onnx, amax_method, stats) and
    whether a table is stored."""
    info = client.info(session.name)
    try:
        table = session.amax_table()
    except qcal.QcalError as error:
        table = error.code
    return info, table


@pytest.mark.parametrize(
    "out, error",
    [("no_such_dir/out.onnx", FileNotFoundError), ("a_directory", IsADirectoryError),
     # out itself a directory: OUT.partial opens, but the rename could not (a new user's finding)
     ("an_existing_directory", IsADirectoryError)],
)
def test_export_to_an_unwritable_out_sends_nothing(client, model_name, onnx_models, tmp_path,
                                                    out, error):
    # The output (OUT.partial) is opened before the export is sent, as the CLI does: the server
    # must not keep the ONNX model or the table computed for an export whose result is lost.
    (tmp_path / "a_directory.partial").mkdir()
    (tmp_path / "an_existing_directory").mkdir()
    session = client.model(model_name)
    session.record("conv1._input_quantizer", np.ones((1, 1, 8, 8), np.float32))
    session.flush()
    before = _server_state(client, session)
    assert before[0]["has_onnx"] is False and before[1] == "FAILED_PRECONDITION"
    with pytest.raises(error):
        session.export_onnx(onnx_models[13], out=tmp_path / out, method="max")
    assert _server_state(client, session) == before
    assert (tmp_path / out).exists() == (out == "an_existing_directory")
    assert not (tmp_path / (out + ".partial")).is_file()


def test_export_writes_out_only_when_it_succeeds(client, model_name, onnx_models, tmp_path):
    session = client.model(model_name)
    session.record("conv1._input_quantizer", np.ones((1, 1, 8, 8), np.float32))
    out = tmp_path / "out.onnx"
    # Refused by the server: no out, no partial left behind.
    with pytest.raises(qcal.QcalError):
        session.export_onnx(onnx_models[13], out=out, method="percentile", percentile=150)
    assert list(tmp_path.iterdir()) == []
    # An out that exists is replaced only by a complete result.
    out.write_bytes(b"old")
    with pytest.raises(qcal.QcalError):
        session.export_onnx(onnx_models[13], out=out, method="percentile", percentile=150)
    assert out.read_bytes() == b"old" and list(tmp_path.iterdir()) == [out]
    data = session.export_onnx(onnx_models[13], out=str(out), method="max")
    assert out.read_bytes() == data and list(tmp_path.iterdir()) == [out]
