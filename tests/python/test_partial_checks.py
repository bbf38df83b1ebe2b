"""Partial-state dicts are checked in Python before they reach the C++ layer (qcal/_partial.py):
a malformed dict given to record_partial or merge_partial raises TypeError naming the field or
QcalError INVALID_ARGUMENT, never pybind11's RuntimeError or a KeyError, and nothing is sent.
Also count_partial's and the aggregating calls' argument contracts."""

import copy

import numpy as np
import pytest
import torch

import qcal
import qcal.torch

# Canonical states (the server's and merge_partial's rule) of small tensors.
HIST = qcal.count_partial(np.array([0.5, 1.0, -1.25, 0.75], dtype=np.float32))
MAX = qcal.count_partial(np.array([[0.5, 2.0, 1.0]], dtype=np.float32), "max", axis=1)

def changed(base, path, value):
    """A deep copy of base with base[path[0]][path[1]]... set to value (value DELETE: removed)."""
    state = copy.deepcopy(base)
    inner = state
    for key in path[:-1]:
        inner = inner[key]
    if value is DELETE:
        del inner[path[-1]]
    else:
        inner[path[-1]] = value
    return state


DELETE = object()

TYPE_ERRORS = [
    (HIST, ("elements",), "4", "field 'elements' must be an int, got str"),
    (HIST, ("batches",), True, "field 'batches' must be an int, got bool"),
    (HIST, ("nonfinite",), 1.0, "field 'nonfinite' must be an int, got float"),
    (HIST, ("histogram",), [1], "field 'histogram' must be a dict, got list"),
    (HIST, ("histogram", "exponent"), None, "field 'histogram.exponent' must be an int"),
    (HIST, ("histogram", "counts"), np.array([1.0, 2.0]),
     "field 'histogram.counts' must be an array of integers, got dtype float64"),
    (HIST, ("histogram", "counts"), np.array([True]),
     "field 'histogram.counts' must be an array of integers, got dtype bool"),
    (HIST, ("histogram", "counts"), [1, True], "field 'histogram.counts[1]' must be an int"),
    (HIST, ("histogram", "counts"), [1.5], "field 'histogram.counts[0]' must be an int"),
    (HIST, ("histogram", "counts"), "12", "field 'histogram.counts' must be a 1-D sequence"),
    (HIST, ("histogram", "abs_max"), "1", "field 'histogram.abs_max' must be a real number"),
    (HIST, ("histogram", "abs_max"), False, "field 'histogram.abs_max' must be a real number"),
    (HIST, ("histogram", "zeros"), 0.0, "field 'histogram.zeros' must be an int"),
    (MAX, ("max", "amax"), ["1"], "field 'max.amax[0]' must be a real number, got str"),
    (MAX, ("max", "amax"), np.array(["a"]), "field 'max.amax' must be an array of real"),
    (MAX, ("max", "amax"), 1.0, "field 'max.amax' must be a 1-D sequence"),
    (MAX, ("max", "axis"), 0.0, "field 'max.axis' must be an int or None, got float"),
    (MAX, ("max", "axis"), True, "field 'max.axis' must be an int or None, got bool"),
]

VALUE_ERRORS = [
    (HIST, ("elements",), DELETE, "missing key 'elements'"),
    (HIST, ("extra",), 1, "unknown key 'extra'"),
    (HIST, ("max",), MAX["max"], "must have exactly one of 'histogram' and 'max', got both"),
    (HIST, ("histogram",), DELETE, "must have exactly one of 'histogram' and 'max', got neither"),
    (HIST, ("histogram", "zeros"), DELETE, "field 'histogram': missing key 'zeros'"),
    (MAX, ("max", "bins"), 3, "field 'max': unknown key 'bins'"),
    (HIST, ("batches",), -1, "field 'batches' -1 is outside [0, 2^63 - 1]"),
    (HIST, ("elements",), 2**63, f"field 'elements' {2**63} is outside [0, 2^63 - 1]"),
    (HIST, ("histogram", "exponent"), 2**31, "field 'histogram.exponent' 2147483648 is outside"),
    (HIST, ("histogram", "zeros"), 2**64, "field 'histogram.zeros'"),
    (HIST, ("histogram", "zeros"), -1, "field 'histogram.zeros' -1 is outside [0, 2^64 - 1]"),
    (HIST, ("histogram", "counts"), [1, -2], "field 'histogram.counts[1]' -2 is outside"),
    (HIST, ("histogram", "counts"), [2**64], "field 'histogram.counts[0]'"),
    (HIST, ("histogram", "counts"), np.array([1, -2], dtype=np.int8),
     "field 'histogram.counts' has a negative count -2"),
    (HIST, ("histogram", "counts"), np.ones((2, 2), dtype=np.uint64),
     "field 'histogram.counts' must be 1-D, got shape (2, 2)"),
    (MAX, ("max", "amax"), np.ones((1, 3), dtype=np.float32), 
     "field 'max.amax' must be 1-D, got shape (1, 3)"),
    (MAX, ("max", "axis"), -(2**31) - 1, "field 'max.axis'"),
]


def calls(session):
    """Every entry of a partial state into C++, with the name its errors start with."""
    return [
        ("record_partial(): partial state", lambda s: session.record_partial("q", s)),
        ("merge_partial(): state", lambda s: qcal.merge_partial(s, copy.deepcopy(HIST))),
        ("merge_partial(): other", lambda s: qcal.merge_partial(copy.deepcopy(HIST), s)),
    ]


@pytest.mark.parametrize("base, path, value, message", TYPE_ERRORS)
def test_fields_of_the_wrong_type_raise_type_error_naming_them(session, base, path, value,
                                                               message):
    for prefix, call in calls(session):
        with pytest.raises(TypeError) as error:
            call(changed(base, path, value))
        assert str(error.value).startswith(prefix + " " + message), str(error.value)
    session.flush()
    assert session.stats()["applied_partials"] == 0


@pytest.mark.parametrize("base, path, value, message", VALUE_ERRORS)
def test_refused_values_raise_invalid_argument(session, base, path, value, message):
    for prefix, call in calls(session):
        with pytest.raises(qcal.QcalError) as error:
            call(changed(base, path, value))
        assert error.value.code == "INVALID_ARGUMENT"
        assert error.value.message.startswith(prefix + " " + message), error.value.message
    session.flush()
    assert session.stats()["applied_partials"] == 0


def test_a_state_that_is_not_a_dict_is_a_type_error(session):
    with pytest.raises(TypeError, match=r"^record_partial\(\): partial state must be a dict, got "
                                        r"list$"):
        session.record_partial("q", [HIST])
    with pytest.raises(TypeError, match=r"^merge_partial\(\): other must be a dict, got NoneType"):
        qcal.merge_partial(HIST, None)


def test_accepted_forms_are_converted_exactly(session):
    # Python lists, numpy integer scalars, int8 counts >= 0, counts up to 2^64 - 1, int amax.
    h = HIST["histogram"]
    lists = {"batches": np.int64(1), "elements": np.uint32(4), "nonfinite": 0,
             "histogram": {"exponent": np.int16(h["exponent"]), "counts": h["counts"].tolist(),
                           "abs_max": np.float32(h["abs_max"]), "zeros": np.uint64(0)}}
    narrow = changed(HIST, ("histogram", "counts"), h["counts"].astype(np.int8))
    merged = qcal.merge_partial(lists, narrow)
    assert merged["batches"] == 2 and merged["elements"] == 8
    np.testing.assert_array_equal(merged["histogram"]["counts"], 2 * h["counts"])
    big = h["counts"].copy()
    big[1024] = 2**64 - 8  # with the other counts and HIST's 4: 2^64 - 1 values in all
    merged = qcal.merge_partial(changed(HIST, ("histogram", "counts"), big.tolist()), HIST)
    assert int(merged["histogram"]["counts"][1024]) == 2**64 - 7
    maxima = qcal.merge_partial({**MAX, "max": {"amax": [1, 0.25, 3], "axis": np.int32(1)}},
                                {**MAX, "max": {"amax": (2.0, 0.5, 1.0), "axis": 1}})
    assert maxima["max"]["amax"].tolist() == [2.0, 0.5, 3.0]
    assert maxima["max"]["axis"] == 1
    # The same forms are accepted by record_partial and applied by the server.
    session.record_partial("conv._input_quantizer", lists)
    session.flush()
    assert session.stats()["applied_partials"] == 1
    assert session.info()["quantizers"]["conv._input_quantizer"]["elements"] == 4


def test_the_callers_dict_is_not_changed():
    counts = HIST["histogram"]["counts"].tolist()
    state = changed(HIST, ("histogram", "counts"), counts)
    qcal.merge_partial(state, HIST)
    assert state["histogram"]["counts"] == counts and isinstance(state["elements"], int)


def test_count_partial_refuses_arguments_of_the_other_calibrator():
    x = np.array([1.0, -2.0], dtype=np.float32)
    with pytest.raises(qcal.QcalError, match="axis applies to max only") as error:
        qcal.count_partial(x, "histogram", axis=0)
    assert error.value.code == "INVALID_ARGUMENT"
    with pytest.raises(qcal.QcalError, match="num_bins 16 given with calibrator 'max'"):
        qcal.count_partial(x, "max", num_bins=16)
    with pytest.raises(qcal.QcalError, match="skip_zeros=True given with calibrator 'max'"):
        qcal.count_partial(x, "max", skip_zeros=True)
    with pytest.raises(TypeError, match=r"count_partial\(\): skip_zeros must be a bool"):
        qcal.count_partial(x, "histogram", skip_zeros=1)
    with pytest.raises(TypeError, match=r"count_partial\(\): num_bins must be an int"):
        qcal.count_partial(x, "histogram", num_bins=2.0)
    # The defaults, given explicitly, are accepted.
    assert qcal.count_partial(x, "max", num_bins=2048, skip_zeros=False)["max"]["amax"].tolist() \
        == [2.0]
    assert qcal.count_partial(x, "histogram", axis=None)["histogram"]["abs_max"] == 2.0


class _Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize("make", [
    lambda c, s, **kw: c.model("args-model", **kw),
    lambda c, s, **kw: qcal.torch.calibrate(_Model(), s, **kw).__enter__(),
])
def test_aggregate_and_send_every_contracts(client, session, make):
    with pytest.raises(TypeError, match="aggregate must be a bool, got int"):
        make(client, session, aggregate=1)
    for bad in (1.0, "2", True):
        with pytest.raises(TypeError, match="send_every must be an int or None"):
            make(client, session, aggregate=True, send_every=bad)
    for bad, got in ((0, "0"), (-1, "-1")):
        with pytest.raises(qcal.QcalError) as error:
            make(client, session, aggregate=True, send_every=bad)
        assert error.value.code == "INVALID_ARGUMENT"
        assert error.value.message == f"send_every must be >= 1, got {got}"
    # Above what the C++ session counts in: refused before the model is created (pybind11's
    # own TypeError came after it).
    with pytest.raises(qcal.QcalError) as error:
        make(client, session, aggregate=True, send_every=2**63)
    assert error.value.message == f"send_every must be <= 2^63 - 1, got {2**63}"
    with pytest.raises(qcal.QcalError) as error:
        make(client, session, send_every=2)
    assert error.value.code == "INVALID_ARGUMENT"
    assert error.value.message == "send_every applies only with aggregate=True"
    assert "args-model" not in [m["name"] for m in client.models()]


def test_aggregator_send_every_contract(session):
    with pytest.raises(TypeError, match=r"Aggregator\(\): send_every must be an int or None"):
        qcal.Aggregator(session, send_every=True)
    with pytest.raises(qcal.QcalError, match="send_every must be >= 1, got 0"):
        qcal.Aggregator(session, send_every=0)
    assert qcal.Aggregator(session, send_every=np.int64(3))._send_every == 3


def test_max_queue_bytes_message_names_the_bound(client):
    with pytest.raises(qcal.QcalError) as error:
        client.model("x", max_queue_bytes=-1)
    assert error.value.message == "max_queue_bytes must be >= 0, got -1"
    with pytest.raises(qcal.QcalError) as error:
        client.model("x", max_queue_bytes=2**64)
    assert error.value.message == f"max_queue_bytes must be <= 2^64 - 1, got {2**64}"
    assert "x" not in [m["name"] for m in client.models()]
