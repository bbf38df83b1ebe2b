"""Errors raise qcal.QcalError with the gRPC code name and the server's message."""

import pickle

import numpy as np
import pytest

import qcal


def test_unknown_model_is_not_found(client):
    with pytest.raises(qcal.QcalError) as error:
        client.info("no-such-model")
    assert error.value.code == "NOT_FOUND"
    assert "'no-such-model'" in error.value.message
    assert str(error.value) == f"NOT_FOUND: {error.value.message}"


def test_background_send_error_surfaces_once_at_flush(client):
    session = client.model("never-created", create=False)
    session.record("x._input_quantizer", np.ones(4, np.float32))  # queued: returns at once
    with pytest.raises(qcal.QcalError) as error:
        session.flush()
    assert error.value.code == "NOT_FOUND"
    session.flush()  # reported once


def test_create_twice_is_already_exists_but_model_keeps_it(client):
    client.create("twice")
    with pytest.raises(qcal.QcalError) as error:
        client.create("twice")
    assert error.value.code == "ALREADY_EXISTS"
    assert client.model("twice").name == "twice"  # create=True keeps an existing model


def test_client_side_refusals_use_invalid_argument(session):
    with pytest.raises(qcal.QcalError) as error:
        session.record("x._input_quantizer", np.arange(3, dtype=np.int64))
    assert error.value.code == "INVALID_ARGUMENT" and "int64" in error.value.message
    with pytest.raises(qcal.QcalError) as error:
        session.record("x._input_quantizer", __import__("torch").arange(3))
    assert error.value.code == "INVALID_ARGUMENT" and "torch.int64" in error.value.message
    with pytest.raises(qcal.QcalError) as error:
        session.compute_amax(method="percentile", percentile=0)
    assert error.value.code == "INVALID_ARGUMENT"
    with pytest.raises(qcal.QcalError) as error:
        session.compute_amax(method="entropy", overrides={"x": {"method": "mse", "bins": 3}})
    assert error.value.code == "INVALID_ARGUMENT" and "'bins'" in error.value.message
    with pytest.raises(qcal.QcalError) as error:
        session.record("", np.ones(2, np.float32))
    assert error.value.code == "INVALID_ARGUMENT"


def test_no_server_is_unavailable():
    client = qcal.Client("127.0.0.1:1", timeout=30)
    with pytest.raises(qcal.QcalError) as error:
        client.models()
    assert error.value.code == "UNAVAILABLE"


def test_default_address_comes_from_the_environment(monkeypatch, server):
    monkeypatch.setenv("QCAL_SERVER", server.address)
    assert qcal.Client().address == server.address
    monkeypatch.delenv("QCAL_SERVER")
    assert qcal.Client().address == "127.0.0.1:50051"


def test_errors_pickle(session):
    error = qcal.QcalError("NOT_FOUND", "unknown model 'x'")
    again = pickle.loads(pickle.dumps(error))
    assert (again.code, again.message) == ("NOT_FOUND", "unknown model 'x'")


ONES = np.ones(4, np.float32)

# (call, the argument a TypeError must name). Each would have reached pybind11 and raised its
# "incompatible function arguments" TypeError listing the internal signatures.
TYPE_ERRORS = [
    (lambda c, s: s.compute_amax(method="entropy", stride=1.5), "stride"),
    (lambda c, s: s.compute_amax(method="entropy", start_bin="64"), "start_bin"),
    (lambda c, s: s.compute_amax(method="percentile", percentile="99"), "percentile"),
    (lambda c, s: s.compute_amax(method="mse", start_bin=True), "start_bin"),
    (lambda c, s: s.compute_amax(method=None), "method"),
    (lambda c, s: s.compute_amax(overrides=["x"]), "overrides"),
    (lambda c, s: s.compute_amax(overrides={"x": 3}), "overrides['x']"),
    (lambda c, s: s.compute_amax(overrides={3: "max"}), "overrides key"),
    (lambda c, s: s.record(None, ONES), "quantizer"),
    (lambda c, s: s.record(b"x._input_quantizer", ONES), "quantizer"),
    (lambda c, s: s.record("q", "not a tensor"), "tensor"),
    (lambda c, s: s.record("q", None), "tensor"),
    (lambda c, s: s.record("q", {"a": 1}), "tensor"),
    (lambda c, s: s.record("q", [[1.0, 2.0], [3.0]]), "tensor"),  # ragged
    (lambda c, s: s.histogram(3), "quantizer"),
    (lambda c, s: s.upload_onnx(3), "onnx"),
    (lambda c, s: s.upload_onnx(b"", tensor_map=[("a", "b")]), "tensor_map"),
    (lambda c, s: s.export_onnx(target=1), "target"),
    (lambda c, s: s.export_onnx(fp8_ops=1), "fp8_ops"),
    (lambda c, s: s.export_onnx(out=3), "out"),
    (lambda c, s: c.model(b"x"), "name"),
    (lambda c, s: c.model("x", chunk_bytes=1.5), "chunk_bytes"),
    (lambda c, s: c.info(None), "name"),
    (lambda c, s: c.create(7), "name"),
    (lambda c, s: c.model("x", default_input=[("num_bits", 8)]), "default_input"),
    (lambda c, s: c.model("x", default_weight={"num_bits": "8"}), "default_weight['num_bits']"),
    (lambda c, s: c.model("x", default_input={"skip_zeros": 0}), "default_input['skip_zeros']"),
    (lambda c, s: c.model("x", quantizers=[{"name": None}]), "quantizers[0]['name']"),
    (lambda c, s: c.model("x", quantizers=[3]), "quantizers[0]"),
    (lambda c, s: c.create("x", exist_ok="yes"), "exist_ok"),
    (lambda c, s: qcal.Client("127.0.0.1:1", timeout="5"), "timeout"),
]


@pytest.mark.parametrize("call, argument", TYPE_ERRORS)
def test_wrong_types_raise_a_type_error_naming_the_argument(client, session, call, argument):
    with pytest.raises(TypeError) as error:
        call(client, session)
    message = str(error.value)
    assert argument in message, message
    assert "incompatible function arguments" not in message and "_qcal" not in message, message


# (call, a fragment of the INVALID_ARGUMENT message): values of the right type that qcal refuses,
# before sending.
VALUE_ERRORS = [
    (lambda c, s: s.compute_amax(method="entropy", start_bin=2**40),
     "start_bin 1099511627776 does not fit the wire's int32"),
    (lambda c, s: s.compute_amax(method="mse", stride=-(2**40)), "stride -1099511627776"),
    (lambda c, s: s.compute_amax(method="percentile", percentile=100.0001),
     "percentile 100.0001 is outside (0, 100]"),
    (lambda c, s: s.compute_amax(method="entropy", percentile=99),
     "percentile applies only to method percentile, not 'entropy'"),
    (lambda c, s: s.compute_amax(method="max", overrides={"a\nb": "max"}),
     "contains control character 0x0a"),
    (lambda c, s: s.export_onnx(stride=2), "stride given without a method"),
    (lambda c, s: s.record("", ONES), "quantizer name is empty"),
    (lambda c, s: s.record("a\nfake: 3f800000", ONES), "contains control character 0x0a"),
    (lambda c, s: s.record("q\udcff", ONES), "is not valid UTF-8"),
    (lambda c, s: s.histogram("q" * 1025), "is 1025 bytes long"),
    (lambda c, s: s.upload_onnx(b"x", tensor_map={"q": "in\tput"}), "ONNX tensor name"),
    (lambda c, s: c.model("\udcff\udcfe"), "model name '\\udcff\\udcfe' is not valid UTF-8"),
    (lambda c, s: c.model("m\x7f"), "contains control character 0x7f"),
    (lambda c, s: c.model(""), "model name is empty"),
    (lambda c, s: c.reset("m\r"), "contains control character 0x0d"),
    (lambda c, s: c.delete("m" * 1025), "is 1025 bytes long"),
    (lambda c, s: c.model("x", chunk_bytes=0), "chunk_bytes 0 is outside [1, 4194304]"),
    (lambda c, s: c.model("x", default_input={"num_bins": 0}), "num_bins 0 is outside 1.."),
    (lambda c, s: c.model("x", default_weight={"calibrator": "entropy"}),
     "calibrator 'entropy' is not max or histogram"),
    (lambda c, s: c.model("x", quantizers=[{"name": "q\n"}]), "contains control character"),
    (lambda c, s: c.model("x", default_input={"name": "q"}), "unknown key 'name'"),
    (lambda c, s: c.create("x", default_input={"axis": 1}), "applies to max calibrators only"),
    (lambda c, s: qcal.Client("127.0.0.1:1", timeout=-1), "timeout -1.0"),
]


@pytest.mark.parametrize("call, fragment", VALUE_ERRORS)
def test_refused_values_raise_invalid_argument_and_change_nothing(
    client, session, call, fragment
):
    before = (client.models(), session.info())
    with pytest.raises(qcal.QcalError) as error:
        call(client, session)
    assert error.value.code == "INVALID_ARGUMENT"
    assert fragment in error.value.message
    session.flush()  # nothing was queued either
    assert (client.models(), session.info()) == before
