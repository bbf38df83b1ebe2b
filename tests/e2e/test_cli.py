"""The qcal CLI against the real qcal-server: the happy path, with values checked by hand."""

import struct

import numpy as np
import onnx
from onnx import numpy_helper

from conftest import REPO, save_npy


def scale_hex(amax, num_bits=8):
    """The TensorRT cache entry: float32 bits of amax / bound, as the server writes them."""
    bound = np.float32(2 ** (num_bits - 1) - 1)
    return struct.pack(">f", np.float32(amax) / bound).hex()


def test_create_list_info_delete(cli, model_name):
    assert cli.ok("create", model_name) == f"created model '{model_name}'\n"
    names = [m["name"] for m in cli.json("models", "--format", "json")]
    assert model_name in names
    assert model_name in cli.ok("models")
    info = cli.json("info", model_name, "--format", "json")
    assert info["name"] == model_name
    assert info["quantizers"] == []
    assert info["has_onnx"] is False
    assert "amax table      none" in cli.ok("info", model_name)
    cli.fails("create", model_name, code="ALREADY_EXISTS", message=f"'{model_name}'")
    assert cli.ok("delete", model_name) == f"deleted model '{model_name}'\n"
    assert model_name not in [m["name"] for m in cli.json("models", "--format", "json")]


def test_record_every_npy_dtype_and_read_the_statistics_back(cli, model_name, tmp_path):
    rng = np.random.default_rng(1)
    f32 = rng.normal(size=(4, 3, 5)).astype(np.float32)
    f16 = (rng.normal(size=(7,)) * 3).astype(np.float16)
    f64 = rng.normal(size=(2, 2)) * 10
    cli.ok("create", model_name)
    q = "conv1._input_quantizer"
    out = cli.ok("record", model_name, q, save_npy(tmp_path, "a.npy", f32))
    assert "float32 [4, 3, 5], 60 elements, 0 non-finite" in out
    cli.ok("record", model_name, q, save_npy(tmp_path, "b.npy", f16))
    cli.ok("record", model_name, q, save_npy(tmp_path, "c.npy", f64))

    info = cli.json("info", model_name, "--format", "json")
    (stats,) = info["quantizers"]
    assert stats["name"] == q
    assert stats["batches"] == 3
    assert stats["elements"] == 60 + 7 + 4
    assert stats["bytes"] == 60 * 4 + 7 * 2 + 4 * 8
    assert stats["nonfinite"] == 0
    assert stats["calibrator"] == "histogram"  # the default of an input quantizer

    # max: the largest |x| of all three batches, as float32.
    expected = max(np.abs(f32).max(), np.float32(np.abs(f16).max()), np.float32(np.abs(f64).max()))
    table = cli.json("amax", model_name, "--method", "max", "--format", "json")
    entry = table["quantizers"][q]
    assert np.float32(entry["amax"]) == np.float32(expected)
    assert entry["num_bits"] == 8 and entry["axis"] is None
    assert entry["batches"] == 3 and entry["elements"] == 71
    assert table["method"] == "max"

    trt = cli.ok("amax", model_name, "--method", "max", "--format", "trt").splitlines()
    assert trt[0] == "TRT-8601-EntropyCalibration2"
    assert f"{q}: {scale_hex(expected)}" in trt[1:]

    text = cli.ok("amax", model_name, "--method", "max")
    assert q in text and f"{np.float32(expected):.6g}" in text


def test_histogram_of_hand_placed_values(cli, model_name, tmp_path):
    # max |x| = 4 over 2048 bins: bin width 1/512, so 1.0 falls in bin 512, 2.0 in bin 1024 and
    # 4.0 (the range's end) in the last bin, 2047 (the reference layout's bins).
    values = np.array([1.0, -1.0, 1.0, 2.0, -4.0], dtype=np.float32)
    cli.ok("create", model_name, "--histogram-layout", "reference")
    cli.ok("record", model_name, "x._input_quantizer", save_npy(tmp_path, "v.npy", values))
    hist = cli.json("histogram", model_name, "x._input_quantizer", "--format", "json")
    counts = np.array(hist["counts"])
    assert len(counts) == 2048 and len(hist["edges"]) == 2049
    assert hist["edges"][0] == 0.0 and hist["edges"][-1] == 4.0
    assert counts[512] == 3 and counts[1024] == 1 and counts[2047] == 1
    assert counts.sum() == 5 == hist["total"]
    assert hist["abs_max"] == 4.0 and hist["nonfinite"] == 0
    text = cli.ok("histogram", model_name, "x._input_quantizer")
    assert "bins 2048, range [0, 4], abs_max 4, total 5, nonfinite 0" in text


def test_every_method_gives_an_amax_within_the_range(cli, model_name, tmp_path):
    rng = np.random.default_rng(2)
    cli.ok("create", model_name)
    data = rng.laplace(size=(64, 256)).astype(np.float32)
    cli.ok("record", model_name, "x._input_quantizer", save_npy(tmp_path, "d.npy", data))
    top = np.abs(data).max()
    for args in (
        ["--method", "entropy"],
        ["--method", "mse"],
        ["--method", "percentile", "--percentile", "99.9"],
        ["--method", "entropy", "--start-bin", "256", "--stride", "4"],
    ):
        table = cli.json("amax", model_name, *args, "--format", "json")
        entry = table["quantizers"]["x._input_quantizer"]
        assert 0 < entry["amax"] <= top, args
        assert entry["method"] == args[1]
        info = cli.json("info", model_name, "--format", "json")
        assert info["amax_method"] == args[1]
    # A lower percentile never picks a larger amax.
    def percentile(p):
        table = cli.json("amax", model_name, "--method", "percentile", "--percentile", p,
                         "--format", "json")
        return table["quantizers"]["x._input_quantizer"]["amax"]

    assert percentile(90) < percentile(99)


def test_reset_drops_data_and_keeps_the_model(cli, model_name, tmp_path):
    cli.ok("create", model_name)
    ones = save_npy(tmp_path, "v.npy", np.ones(8, np.float32))
    cli.ok("record", model_name, "x._input_quantizer", ones)
    cli.ok("amax", model_name, "--method", "max")
    assert cli.ok("reset", model_name) == f"reset model '{model_name}'\n"
    info = cli.json("info", model_name, "--format", "json")
    assert info["amax_method"] == ""
    assert all(q["batches"] == 0 for q in info["quantizers"])
    cli.fails("amax", model_name, "--method", "max",
              code="FAILED_PRECONDITION", message="no recorded data")


def test_export_writes_a_checked_qdq_model_with_the_recorded_scales(
    cli, model_name, tmp_path, onnx_models
):
    rng = np.random.default_rng(3)
    conv_in = rng.normal(size=(2, 1, 8, 8)).astype(np.float32)
    fc_in = np.abs(rng.normal(size=(2, 64))).astype(np.float32)
    cli.ok("create", model_name)
    cli.ok("record", model_name, "conv1._input_quantizer", save_npy(tmp_path, "c.npy", conv_in))
    cli.ok("record", model_name, "fc._input_quantizer", save_npy(tmp_path, "f.npy", fc_in))
    out = tmp_path / "qdq.onnx"
    stdout = cli.ok("export", model_name, "--onnx", onnx_models[13], "--out", out,
                    "--method", "max")
    assert stdout.startswith(f"wrote {out} (")

    qdq = onnx.load(str(out))
    onnx.checker.check_model(qdq)
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    quantize = [n for n in qdq.graph.node if n.op_type == "QuantizeLinear"]
    dequantize = [n for n in qdq.graph.node if n.op_type == "DequantizeLinear"]
    assert quantize and len(quantize) == len(dequantize)
    # The graph input feeds conv1: its Q/DQ scale is conv1's input amax / 127, zero point 0.
    (q_input,) = [n for n in quantize if n.input[0] == "input"]
    assert inits[q_input.input[1]] == np.float32(np.abs(conv_in).max()) / np.float32(127)
    assert inits[q_input.input[2]] == 0
    # Weights are quantized per channel on axis 0 (conv1: 4 output channels).
    weight_scales = [inits[n.input[1]] for n in quantize if n.input[0] == "conv1.weight"]
    assert len(weight_scales) == 1 and weight_scales[0].shape == (4,)
    assert np.all(weight_scales[0] > 0)

    info = cli.json("info", model_name, "--format", "json")
    assert info["has_onnx"] is True and info["amax_method"] == "max"
    # After an upload the TensorRT cache is keyed by ONNX tensor names.
    trt = cli.ok("amax", model_name, "--method", "max", "--format", "trt")
    assert f"input: {scale_hex(np.abs(conv_in).max())}" in trt.splitlines()


def test_export_with_an_explicit_tensor_map_and_target(cli, model_name, tmp_path, onnx_models):
    cli.ok("create", model_name)
    data = np.linspace(-2, 3, 128, dtype=np.float32).reshape(2, 64)
    cli.ok("record", model_name, "head._input_quantizer", save_npy(tmp_path, "h.npy", data))
    out = tmp_path / "qdq.onnx"
    # "head" is no module of the network: only the explicit pair binds it to fc's input.
    gemm = [n for n in onnx.load(str(onnx_models[13])).graph.node if n.op_type == "Gemm"][0]
    cli.ok("export", model_name, "--onnx", onnx_models[13], "--out", out, "--method", "max",
           "--map", f"head._input_quantizer={gemm.input[0]}", "--target", "onnxruntime")
    qdq = onnx.load(str(out))
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    quantize = [n for n in qdq.graph.node if n.op_type == "QuantizeLinear"]
    (q_fc,) = [n for n in quantize if n.input[0] == gemm.input[0]]
    assert inits[q_fc.input[1]] == np.float32(3.0) / np.float32(127)
    cli.usage_error("export", model_name, "--onnx", onnx_models[13], "--out", out, "--map",
                    "nonsense", message="'nonsense' is not QUANTIZER=TENSOR")


def test_server_address_from_the_environment(cli_bin, server, model_name):
    import os
    import subprocess

    env = dict(os.environ, QCAL_SERVER=server.address)
    result = subprocess.run([str(cli_bin), "create", model_name],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Nothing listens on port 1: UNAVAILABLE, with the code name on stderr.
    result = subprocess.run([str(cli_bin), "--server", "127.0.0.1:1", "--timeout", "10", "models"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("error: UNAVAILABLE: ")


def test_export_of_a_bn_folded_model_from_the_server_testdata(cli, model_name, tmp_path):
    # cnn_bn.onnx: conv1/conv2 with BatchNorm folded (weights renamed onnx::Conv_NN), conv3,
    # fc1, fc2 (Gemm). Each module's recorded input must quantize its node's data input.
    source = REPO / "server" / "onnx" / "testdata" / "cnn_bn.onnx"
    inputs = {
        "conv1": ((2, 1, 8, 8), "input"),
        "conv2": ((2, 4, 4, 4), "/pool/MaxPool_output_0"),
        "conv3": ((2, 6, 2, 2), "/pool_1/MaxPool_output_0"),
        "fc1": ((2, 24), "/Flatten_output_0"),
        "fc2": ((2, 8), "/Relu_3_output_0"),
    }
    cli.ok("create", model_name)
    for i, (module, (shape, _)) in enumerate(inputs.items()):
        data = np.linspace(-1.0, 1.0 + i, int(np.prod(shape)), dtype=np.float32).reshape(shape)
        cli.ok("record", model_name, f"{module}._input_quantizer",
               save_npy(tmp_path, f"{module}.npy", data))
    out = tmp_path / "cnn_bn_qdq.onnx"
    cli.ok("export", model_name, "--onnx", source, "--out", out, "--method", "max")
    qdq = onnx.load(str(out))
    onnx.checker.check_model(qdq)
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    quantize = {n.input[0]: n for n in qdq.graph.node if n.op_type == "QuantizeLinear"}
    for i, (module, (_, tensor)) in enumerate(inputs.items()):
        assert inits[quantize[tensor].input[1]] == np.float32(1.0 + i) / np.float32(127), module
    for weight in ("onnx::Conv_35", "onnx::Conv_38", "conv3.weight", "fc1.weight", "fc2.weight"):
        scale = inits[quantize[weight].input[1]]
        assert scale.ndim == 1 and np.all(scale > 0), weight


def test_export_explain_prints_a_table_on_stdout_before_the_wrote_line(cli, model_name, tmp_path):
    # resnet_block.onnx: layer1.0's residual Add reads conv1's output relu ("/Relu_output_0"),
    # which is also layer1.0.conv1's input: the shortcut shares that conv's Q/DQ pair.
    source = REPO / "server" / "onnx" / "testdata" / "resnet_block.onnx"
    cli.ok("create", model_name)
    for module, shape in (("conv1", (1, 3, 8, 8)), ("layer1.0.conv1", (1, 4, 8, 8))):
        data = np.linspace(-1.0, 2.0, int(np.prod(shape)), dtype=np.float32).reshape(shape)
        cli.ok("record", model_name, f"{module}._input_quantizer",
               save_npy(tmp_path, f"{module}.npy", data))
    out = tmp_path / "qdq.onnx"
    plain = cli.ok("export", model_name, "--onnx", source, "--out", out, "--method", "max")
    assert plain.startswith(f"wrote {out} (") and len(plain.splitlines()) == 1
    stdout = cli.ok("export", model_name, "--onnx", source, "--out", out, "--explain")
    lines = stdout.splitlines()
    assert lines[0].split() == ["NODE", "OP", "IN", "TENSOR", "DECISION", "RULE", "QUANTIZER",
                                "REASON"]
    assert lines[-1].startswith(f"wrote {out} (")
    rows = {(line.split()[0], line.split()[2]): line for line in lines[1:-1]}
    shortcut = rows[("/layer1/layer1.0/Add", "1")]
    assert "quantized" in shortcut and "residual add shortcut" in shortcut
    assert "layer1.0.conv1._input_quantizer" in shortcut
    conv_side = rows[("/layer1/layer1.0/Add", "0")]
    assert "skipped" in conv_side and "residual add conv side" in conv_side
    assert "no quantizer recorded" in rows[("/layer1/layer1.0/conv2/Conv", "0")]
