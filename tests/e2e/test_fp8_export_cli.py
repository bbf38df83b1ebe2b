"""`qcal export --fp8-ops`: the option reaches the server, and a model without FP8 quantizers is
exported the same either way (FP8 pairs themselves are tested in server/onnx/fp8_*_test.cc, since
creating an FP8 quantizer needs QuantizerSpec.format end to end)."""

import numpy as np
import onnx

from conftest import save_npy


def test_fp8_ops_leave_an_int8_export_unchanged(cli, model_name, tmp_path, onnx_models):
    cli.ok("create", model_name)
    data = np.linspace(-2, 3, 64, dtype=np.float32).reshape(1, 1, 8, 8)
    cli.ok("record", model_name, "conv1._input_quantizer", save_npy(tmp_path, "c.npy", data))
    outputs = {}
    for ops in (None, "onnx", "trt"):
        out = tmp_path / f"qdq_{ops}.onnx"
        args = ["export", model_name, "--onnx", onnx_models[13], "--out", out, "--method", "max"]
        cli.ok(*(args + (["--fp8-ops", ops] if ops else [])))
        outputs[ops] = out.read_bytes()
    assert outputs["onnx"] == outputs[None] and outputs["trt"] == outputs[None]
    qdq = onnx.load_from_string(outputs["trt"])
    assert [o.version for o in qdq.opset_import if o.domain in ("", "ai.onnx")] == [13]
    assert all(o.domain != "trt" for o in qdq.opset_import)
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) == 2  # conv1 input, weight
    cli.usage_error("export", model_name, "--onnx", onnx_models[13], "--out",
                    tmp_path / "x.onnx", "--fp8-ops", "fp8", message="--fp8-ops")


def test_python_fp8_ops_reaches_the_server(client, model_name, tmp_path, onnx_models):
    import qcal

    session = client.model(model_name)
    session.record("conv1._input_quantizer", np.ones((1, 1, 8, 8), dtype=np.float32))
    default = session.export_onnx(onnx_models[13], method="max")
    assert session.export_onnx(onnx_models[13], method="max", fp8_ops="trt") == default
    try:
        session.export_onnx(onnx_models[13], method="max", fp8_ops="fp8")
    except qcal.QcalError as e:
        assert e.code == "INVALID_ARGUMENT" and "FP8 ops 'fp8'" in str(e), e
    else:
        raise AssertionError("fp8_ops='fp8' was accepted")
