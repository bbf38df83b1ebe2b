"""FP8 E4M3 quantizers through the service: a model created from the Python client with
pytorch-quantization's num_bits=(4, 3), recorded, calibrated with max; the amax table (message
and JSON) says fp8_e4m3, the TensorRT cache leaves the FP8 quantizers out with a warning (INT8
only, issue 5's rule), and the formats survive kill -9 and a restart on the same --data-dir.
Also the CLI's descriptor key format= and its table column, and mse / entropy choosing another
amax for an FP8 quantizer than for an INT one on the same data."""

import warnings

import numpy as np
import pytest

import qcal
from conftest import Cli
from dashboard_data import get_json
from restartable_server import RestartableServer

FP8_INPUT = "conv1._input_quantizer"
INT_INPUT = "fc._input_quantizer"
WEIGHT = "conv1._weight_quantizer"


def formats(info):
    return {name: q["format"] for name, q in info["quantizers"].items()}


def test_fp8_model_records_calibrates_and_survives_kill9(server_bin, cli_bin, tmp_path):
    server = RestartableServer(server_bin, "--data-dir", str(tmp_path / "data"),
                               "--commit-interval-seconds", "3600").start()
    try:
        client = qcal.Client(server.address, timeout=60)
        session = client.model(
            "fp8",
            default_input={"num_bits": (4, 3)},
            quantizers=[{"name": INT_INPUT, "format": "int"}],
        )
        rng = np.random.default_rng(3)
        x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
        h = rng.normal(size=(2, 16)).astype(np.float32)
        w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
        session.record(FP8_INPUT, x)
        session.record(INT_INPUT, h)
        session.record(WEIGHT, w)
        session.flush()
        info = session.info()
        assert info["default_input"]["format"] == "fp8_e4m3"
        assert info["default_input"]["num_bits"] == 8
        assert info["default_weight"]["format"] == "int"
        want = {FP8_INPUT: "fp8_e4m3", INT_INPUT: "int", WEIGHT: "int"}
        assert formats(info) == want

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = session.compute_amax("max")
        assert {n: q["format"] for n, q in table["quantizers"].items()} == want
        # max does not depend on the format: the running max of |x|, exactly.
        assert np.float32(table["quantizers"][FP8_INPUT]["amax"]) == np.abs(x).max()
        assert np.float32(table["quantizers"][INT_INPUT]["amax"]) == np.abs(h).max()
        assert [str(c.message) for c in caught] == [
            f"TensorRT calibration cache: quantizer '{FP8_INPUT}' tensor '{FP8_INPUT}' is FP8 "
            "(fp8_e4m3); TensorRT's cache holds 8-bit integer quantizers only: left out (export "
            "a QDQ ONNX model for FP8)"]
        with pytest.warns(qcal.QcalWarning, match="is FP8 \\(fp8_e4m3\\)"):
            cache = session.trt_cache().splitlines()
        assert cache[0] == "TRT-8601-EntropyCalibration2"
        assert [line.split(":")[0] for line in cache[1:]] == [INT_INPUT]
        scale = np.float32(np.abs(h).max()) / np.float32(127)
        assert cache[1] == f"{INT_INPUT}: {np.float32(scale).view(np.uint32):08x}"

        cli = Cli(cli_bin, server.address)
        text = cli.ok("amax", "fp8", "--method", "max")
        # QUANTIZER METHOD AMAX BITS FORMAT ... (per-tensor rows: AMAX is one word)
        rows = {line.split()[0]: line.split() for line in text.splitlines()[2:]}
        assert rows[FP8_INPUT][4] == "fp8_e4m3" and rows[INT_INPUT][4] == "int", text

        client.commit("fp8")
        server.kill9()
        server.start()  # same port, same --data-dir
        restored = qcal.Client(server.address, timeout=60).model("fp8", create=False)
        assert formats(restored.info()) == want
        assert restored.info()["default_input"]["format"] == "fp8_e4m3"
        assert restored.amax_table() == table
        status, body = get_json(server.http_address, "/api/v1/models/fp8")
        assert status == 200
        assert {q["name"]: q["format"] for q in body["quantizers"]} == want
        # Quantizers first seen after the restart still take the FP8 default.
        restored.record("late._input_quantizer", x[:1])
        restored.flush()
        assert restored.info()["quantizers"]["late._input_quantizer"]["format"] == "fp8_e4m3"
        # exist_ok compares the format: the same descriptors join, INT ones are refused.
        client2 = qcal.Client(server.address, timeout=60)
        client2.model("fp8", default_input={"format": "fp8_e4m3"},
                      quantizers=[{"name": INT_INPUT, "format": "int"}]).close()
        with pytest.raises(qcal.QcalError) as error:
            client2.model("fp8", default_input={"num_bits": 8},
                          quantizers=[{"name": INT_INPUT, "format": "int"}])
        assert error.value.code == "FAILED_PRECONDITION"
        assert "default_input format fp8_e4m3, not int" in str(error.value)
        restored.close()
        session.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    "descriptor, message",
    [
        ({"num_bits": (5, 2)}, "the only (exponent, mantissa) form is (4, 3), FP8 E4M3"),
        ({"num_bits": (4, 3), "format": "int"}, "num_bits (4, 3) is FP8 E4M3, but format is 'int'"),
        ({"format": "fp8_e4m3", "num_bits": 4},
         "num_bits 4 does not fit format fp8_e4m3 (8 bits, or unset)"),
        ({"format": "fp8_e4m3", "unsigned": True}, "format fp8_e4m3 is signed"),
        ({"format": "e4m3"}, "format 'e4m3' is not int or fp8_e4m3"),
    ],
)
def test_bad_fp8_descriptors_are_refused(client, model_name, descriptor, message):
    with pytest.raises(qcal.QcalError) as error:
        client.model(model_name, default_input=descriptor)
    assert error.value.code == "INVALID_ARGUMENT"
    assert message in str(error.value)
    with pytest.raises(qcal.QcalError) as error:
        client.info(model_name)
    assert error.value.code == "NOT_FOUND"


def test_cli_creates_fp8_quantizers(cli, model_name):
    cli.ok("create", model_name, "--default-input", "format=fp8_e4m3",
           "--quantizer", "name=a._weight_quantizer,format=fp8_e4m3")
    info = cli.json("info", model_name, "--format", "json")
    assert info["default_input"]["format"] == "fp8_e4m3"
    assert info["default_weight"]["format"] == "int"
    assert [(q["name"], q["format"]) for q in info["quantizers"]] == [
        ("a._weight_quantizer", "fp8_e4m3")]
    cli.usage_error("create", model_name + "x", "--default-input", "format=fp8",
                    message="--default-input: format=fp8: expected int or fp8_e4m3")


@pytest.mark.parametrize("method", ["mse", "entropy"])
def test_fp8_mse_and_entropy_differ_from_int(client, model_name, method):
    # The same heavy-tailed data in an FP8 model and an INT one: mse and entropy simulate E4M3
    # for the FP8 quantizer (kernels' FP8 searches) and pick another amax than the INT grid's.
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.laplace(size=20000), [25.0, -30.0, 40.0]]).astype(np.float32)
    amax = {}
    for fmt, descriptor in [("fp8_e4m3", {"num_bits": (4, 3)}), ("int", {"num_bits": 8})]:
        session = client.model(f"{model_name}-{fmt}", default_input=descriptor)
        session.record(FP8_INPUT, x)
        session.flush()
        with warnings.catch_warnings():  # the TensorRT cache's FP8 warning: tested above
            warnings.simplefilter("ignore", qcal.QcalWarning)
            entry = session.compute_amax(method)["quantizers"][FP8_INPUT]
        assert entry["format"] == fmt and entry["method"] == method
        amax[fmt] = np.float32(entry["amax"])
        session.close()
    for fmt, value in amax.items():
        assert np.isfinite(value) and 0 < value <= np.abs(x).max(), (fmt, amax)
    assert amax["fp8_e4m3"] != amax["int"], amax
