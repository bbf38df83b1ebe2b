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
