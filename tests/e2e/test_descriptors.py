"""Descriptors from the CLI and Python (CreateModel exist_ok), what info shows beside the
statistics (starting and current histogram bins, channel counts, ONNX bindings), which amax table
an export used, and a reset histogram starting again at its starting bin count."""

import numpy as np
import pytest

import qcal
from conftest import save_npy

INPUT_8BIT_HISTOGRAM = {"calibrator": "histogram", "num_bits": 8, "unsigned": False,
                        "axis": None, "num_bins": 2048, "skip_zeros": False,
                        "format": "int"}


def test_cli_create_with_descriptors_and_exist_ok(cli, model_name):
    args = ["create", model_name,
            "--default-input", "num_bits=8,unsigned=true,calibrator=histogram,num_bins=4096,"
            "skip_zeros=false",
            "--default-weight", "axis=1,calibrator=max",
            "--quantizer", "name=conv1._input_quantizer,num_bins=1024",
            "--quantizer", "name=conv1._weight_quantizer,num_bits=4"]
    assert cli.ok(*args) == f"created model '{model_name}'\n"
    info = cli.json("info", model_name, "--format", "json")
    assert info["default_input"] == {"calibrator": "histogram", "num_bits": 8, "unsigned": True,
                                     "axis": None, "num_bins": 4096, "skip_zeros": False,
                        "format": "int"}
    assert info["default_weight"]["axis"] == 1 and info["default_weight"]["calibrator"] == "max"
    by_name = {q["name"]: q for q in info["quantizers"]}
    # Keys left out take the default descriptor of the quantizer's role given in the same call.
    assert by_name["conv1._input_quantizer"]["num_bins"] == 1024
    assert by_name["conv1._input_quantizer"]["unsigned"] is True
    assert by_name["conv1._weight_quantizer"]["num_bits"] == 4
    assert by_name["conv1._weight_quantizer"]["axis"] == 1
    assert by_name["conv1._weight_quantizer"]["calibrator"] == "max"

    # The same configuration, declared quantizers in another order: joined.
    same = args[:6] + args[8:] + args[6:8]
    assert cli.ok(*same, "--exist-ok") == (
        f"model '{model_name}' exists with the same configuration\n")
    cli.fails(*args, code="ALREADY_EXISTS", message=f"model '{model_name}' already exists")
    other = [a.replace("num_bins=4096", "num_bins=2048") for a in args]
    cli.fails(*other, "--exist-ok", code="FAILED_PRECONDITION",
              message=f"model '{model_name}' exists with default_input num_bins 4096, not 2048")
    cli.fails("create", model_name, "--exist-ok", code="FAILED_PRECONDITION",
              message=f"model '{model_name}' exists with default_input unsigned true, not false")
    cli.fails(*args[:8], "--exist-ok", code="FAILED_PRECONDITION",
              message="exists with declared quantizer 'conv1._weight_quantizer', which the "
                      "request does not declare")
    # A refused create changed nothing.
    assert cli.json("info", model_name, "--format", "json") == info


@pytest.mark.parametrize("option, value, message", [
    ("--default-input", "bits=8", "--default-input: unknown key 'bits'"),
    ("--default-input", "num_bits=eight", "--default-input: num_bits=eight: expected an integer"),
    ("--default-input", "unsigned=yes", "unsigned=yes: expected true or false"),
    ("--default-weight", "axis=first", "axis=first: expected an integer, or none"),
    ("--default-weight", "calibrator=kl", "calibrator=kl: expected max or histogram"),
    ("--default-input", "name=x", "name does not apply to a default descriptor"),
    ("--quantizer", "num_bits=4", "--quantizer: name=QUANTIZER is required"),
    ("--default-input", "num_bits=40", "default_input: num_bits 40 is outside 2..16"),
    ("--default-input", "num_bins=0", "default_input: num_bins 0 is outside 1..16777216"),
    ("--default-input", "axis=0", "default_input: axis 0 applies to max calibrators only"),
    ("--default-weight", "skip_zeros=true", "skip_zeros applies to histogram calibrators only"),
    ("--quantizer", "name=a._input_quantizer,num_bits=1",
     "quantizer 'a._input_quantizer': num_bits 1 is outside 2..16"),
])
def test_cli_bad_descriptors_are_usage_errors(cli, model_name, option, value, message):
    cli.usage_error("create", model_name, option, value, message=message)
    cli.fails("info", model_name, code="NOT_FOUND", message=f"unknown model '{model_name}'")


def test_python_model_creates_or_joins_with_descriptors(client, server, model_name):
    descriptors = dict(
        default_input={"num_bins": 4096, "unsigned": True},
        default_weight={"num_bits": 4},
        quantizers=[{"name": "head._input_quantizer", "calibrator": "max"},
                    {"name": "fc._weight_quantizer", "axis": None}],
    )
    session = client.model(model_name, **descriptors)
    info = session.info()
    assert info["default_input"] == dict(INPUT_8BIT_HISTOGRAM, unsigned=True, num_bins=4096)
    assert info["default_weight"] == {"calibrator": "max", "num_bits": 4, "unsigned": False,
                                      "axis": 0, "num_bins": 2048, "skip_zeros": False,
                        "format": "int"}
    head = info["quantizers"]["head._input_quantizer"]
    assert head["calibrator"] == "max" and head["axis"] is None and head["unsigned"] is True
    fc = info["quantizers"]["fc._weight_quantizer"]
    assert fc["calibrator"] == "max" and fc["axis"] is None and fc["num_bits"] == 4

    # Another trainer asking for the same joins it (declared quantizers in any order).
    again = dict(descriptors, quantizers=descriptors["quantizers"][::-1])
    assert client.model(model_name, **again).info() == info
    # Other descriptors are an error, never silently ignored.
    with pytest.raises(qcal.QcalError) as error:
        client.model(model_name, default_input={"num_bins": 2048, "unsigned": True},
                     default_weight={"num_bits": 4}, quantizers=descriptors["quantizers"])
    assert error.value.code == "FAILED_PRECONDITION"
    assert error.value.message == (
        f"model '{model_name}' exists with default_input num_bins 4096, not 2048")
    with pytest.raises(qcal.QcalError, match="FAILED_PRECONDITION"):
        client.model(model_name, default_input={"num_bins": 4096, "unsigned": True})
    # No descriptors: joins whatever exists.
    assert client.model(model_name).info() == info
    with pytest.raises(qcal.QcalError, match="ALREADY_EXISTS"):
        client.create(model_name, **descriptors)
    assert client.create(model_name, exist_ok=True, **descriptors) == info
    with pytest.raises(qcal.QcalError, match="FAILED_PRECONDITION"):
        client.create(model_name, exist_ok=True)

    # The descriptors are used: num_bins 4096 for a new input quantizer. In the mergeable layout
    # (the default) abs_max 1 takes bins of width 2^-12, the finest with floor(1 / 2^k) + 1 <=
    # 2 * 4096: 4097 bins (with num_bins 2048 it would be 2049).
    session.record("x._input_quantizer", np.array([1.0, -0.5], dtype=np.float32))
    assert len(session.histogram("x._input_quantizer")["counts"]) == 4097


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(default_input=8), TypeError, "model(): default_input must be a dict or None, got int"),
    (dict(default_input={"num_bits": 8.0}), TypeError,
     "default_input['num_bits'] must be an int, (4, 3) (FP8 E4M3) or None, got float"),
    (dict(default_weight={"unsigned": 1}), TypeError, "default_weight['unsigned'] must be a bool"),
    (dict(default_input={"axis": "0"}), TypeError, "default_input['axis'] must be an int or None"),
    (dict(quantizers={"name": "q"}), TypeError, "quantizers must be a list of dicts or None"),
    (dict(quantizers=[{"name": 3}]), TypeError, "quantizers[0]['name'] must be a str"),
    (dict(default_input={"bits": 8}), qcal.QcalError, "default_input: unknown key 'bits'"),
    (dict(default_input={"name": "q"}), qcal.QcalError, "a default descriptor has no name"),
    (dict(quantizers=[{"num_bits": 4}]), qcal.QcalError, "quantizers[0]: 'name'"),
    (dict(default_input={"num_bits": 1}), qcal.QcalError, "num_bits 1 is outside 2..16"),
    (dict(default_input={"calibrator": "kl"}), qcal.QcalError, "calibrator 'kl' is not max or"),
    (dict(default_input={"axis": 0}), qcal.QcalError, "axis 0 applies to max calibrators only"),
    (dict(default_input={"num_bins": 2**31}), qcal.QcalError, "does not fit the wire's int32"),
    (dict(default_input={}, create=False), qcal.QcalError, "apply only with create=True"),
])
def test_python_bad_descriptors(client, model_name, kwargs, error, message):
    with pytest.raises(error) as raised:
        client.model(model_name, **kwargs)
    text = str(raised.value) if error is TypeError else raised.value.message
    assert message in text
    if error is qcal.QcalError:
        assert raised.value.code == "INVALID_ARGUMENT"
    with pytest.raises(qcal.QcalError, match="NOT_FOUND"):
        client.info(model_name)


def test_info_shows_starting_and_current_bins_and_channel_counts(cli, client, model_name,
                                                                 tmp_path):
    session = client.model(model_name)
    # max 1 over 2048 bins, then 1.09 grows the range by bins of width 1/2048:
    # ceil(1.09 * 2048) = 2233 bins.
    session.record("x._input_quantizer", np.array([1.0, 0.25], dtype=np.float32))
    session.record("x._input_quantizer", np.array([1.09], dtype=np.float32))
    session.record("fc._weight_quantizer", np.ones((5, 3), dtype=np.float32))
    bins = len(session.histogram("x._input_quantizer")["counts"])
    assert bins == int(np.ceil(np.float32(1.09) / np.float32(1 / 2048))) == 2233
    info = session.info()
    assert info["quantizers"]["x._input_quantizer"]["num_bins"] == 2048
    assert info["quantizers"]["x._input_quantizer"]["bins"] == 2233
    assert info["quantizers"]["x._input_quantizer"]["amax_size"] == 0
    assert info["quantizers"]["fc._weight_quantizer"]["amax_size"] == 5
    assert info["quantizers"]["fc._weight_quantizer"]["bins"] == 0

    by_name = {q["name"]: q for q in cli.json("info", model_name, "--format", "json")["quantizers"]}
    assert by_name["x._input_quantizer"]["bins"] == 2233
    assert by_name["x._input_quantizer"]["num_bins"] == 2048
    assert by_name["fc._weight_quantizer"]["amax_size"] == 5
    text = cli.ok("info", model_name)
    assert "BINS (START->NOW)" in text and "CHANNELS" in text
    (x_line,) = [line for line in text.splitlines() if "x._input_quantizer" in line]
    assert "2048 -> 2233" in x_line
    (fc_line,) = [line for line in text.splitlines() if "fc._weight_quantizer" in line]
    # QUANTIZER CALIBRATOR BITS FORMAT AXIS BINS CHANNELS ...
    assert fc_line.split()[3] == "int" and fc_line.split()[6] == "5"
    assert "bindings        none (no ONNX model uploaded)" in text


# pytorch-quantization's HistogramCalibrator keeps its grown _num_bins across reset() (here it
# would start again with 3072 bins); qcal's starts again at num_bins, on purpose (README).
def test_reset_histogram_starts_again_at_the_starting_bin_count(cli, client, model_name,
                                                                 tmp_path):
    session = client.model(model_name, default_input={"num_bins": 2048},
                           histogram_layout="reference")
    q = "x._input_quantizer"
    session.record(q, np.array([1.0], dtype=np.float32))
    session.record(q, np.array([1.5], dtype=np.float32))
    assert len(session.histogram(q)["counts"]) == 3072
    assert session.info()["quantizers"][q]["bins"] == 3072
    assert session.reset()["quantizers"] == {}  # created by record: dropped
    # max 2 over 2048 bins: 0.5 in bin 512, 1.0 in bin 1024, 2.0 (the range's end) in 2047.
    cli.ok("record", model_name, q,
           save_npy(tmp_path, "v.npy", np.array([0.5, 1.0, -2.0], dtype=np.float32)))
    hist = session.histogram(q)
    expected = np.zeros(2048, dtype=np.uint64)
    expected[[512, 1024, 2047]] = 1
    np.testing.assert_array_equal(hist["counts"], expected)
    assert hist["edges"][-1] == 2.0 and hist["edges"][1] == np.float32(2.0 / 2048)
    assert session.info()["quantizers"][q]["bins"] == 2048


def test_bindings_and_which_table_export_used(cli, client, model_name, tmp_path, onnx_models):
    rng = np.random.default_rng(4)
    session = client.model(model_name)
    session.record("conv1._input_quantizer", rng.normal(size=(2, 1, 8, 8)).astype(np.float32))
    session.record("fc._input_quantizer", np.abs(rng.normal(size=(2, 64))).astype(np.float32))
    session.record("nowhere._input_quantizer", np.ones(3, dtype=np.float32))
    assert session.info()["onnx_bindings"] == {}

    out = tmp_path / "qdq.onnx"
    result = cli("export", model_name, "--onnx", onnx_models[13], "--out", out, "--method", "mse")
    assert result.returncode == 0, result.stderr
    assert "export: computed a new amax table (method mse)\n" in result.stderr

    bindings = session.info()["onnx_bindings"]
    assert bindings["conv1._input_quantizer"] == "input"
    assert "fc._input_quantizer" in bindings
    assert "nowhere._input_quantizer" not in bindings
    assert cli.json("info", model_name, "--format", "json")["onnx_bindings"] == bindings
    text = cli.ok("info", model_name)
    assert f"bindings        {len(bindings)} (quantizer -> ONNX tensor" in text
    for quantizer, tensor in bindings.items():
        assert f"  {quantizer:<40} -> {tensor}" in text.splitlines()

    # Another client computes entropy; an export without --method uses that stored table.
    client.model(model_name).compute_amax(method="entropy")
    result = cli("export", model_name, "--onnx", onnx_models[13], "--out", out)
    assert result.returncode == 0, result.stderr
    assert ("export: used the stored amax table (method entropy, computed by an earlier "
            "ComputeAmax)\n") in result.stderr
    # (nowhere._input_quantizer binds to no node: a warning)
    with pytest.warns(qcal.QcalWarning, match="nowhere._input_quantizer"):
        session.export_onnx()
    assert session.last_export_amax_method == "entropy"
    assert session.last_export_computed_table is False
    with pytest.warns(qcal.QcalWarning, match="nowhere._input_quantizer"):
        session.export_onnx(method="percentile", percentile=99.0)
    assert session.last_export_amax_method == "percentile"
    assert session.last_export_computed_table is True
