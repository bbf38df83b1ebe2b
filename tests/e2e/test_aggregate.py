"""Client-side pre-aggregation against the real server: for the same tensors, the server's
histogram (counts, edges, abs_max, total, nonfinite) and the amax of all four methods are
bit-identical between raw streaming and pre-aggregation, however the state was counted (the C++
session's aggregate mode, the Python aggregator with the C++ kernels, the torch-ops counter), sent
(send_every 1, 3, only at the end) or mixed with raw batches; and a reference-layout model
refuses pre-aggregation clearly."""

import grpc
import numpy as np
import pytest
import torch
from torch import nn

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
import qcal
import qcal.torch
from qcal import _aggregate

HIST = "h._input_quantizer"  # histogram, 256 bins
SKIP = "s._input_quantizer"  # histogram, 64 bins, skip_zeros
WEIGHT = "w._weight_quantizer"  # the model's default weight: max per channel, axis 0
TENSOR_MAX = "t._input_quantizer"  # max per tensor
QUANTIZERS = [
    {"name": HIST, "num_bins": 256},
    {"name": SKIP, "num_bins": 64, "skip_zeros": True},
    {"name": TENSOR_MAX, "calibrator": "max", "axis": None},
]
# start_bin 16: the 64-bin quantizer holds 65 to 128 bins, fewer than the default 128.
METHODS = [("max", {}), ("entropy", {"start_bin": 16}), ("mse", {"start_bin": 16}),
           ("percentile", {"percentile": 99.9})]


def awkward(seed, shape, scale, dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * 2.0**scale
    flat = x.view(-1)
    flat[seed % flat.numel()] = float("nan")
    flat[(seed * 7) % flat.numel()] = float("inf")
    flat[(seed * 3) % flat.numel()] = 0.0
    flat[(seed * 5) % flat.numel()] = 1.4e-45
    if seed % 3 == 0:
        flat[(seed * 11) % flat.numel()] = 1e6 * 2.0**scale  # one huge outlier
    return x.to(dtype)


# (quantizer, tensor) in recording order: every dtype, growing and shrinking ranges.
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
DATA = [
    (q, awkward(i, shape, scale, DTYPES[i % 4]))
    for i, (q, shape, scale) in enumerate(
        [(q, shape, scale) for scale in (-3, 4, 0, 9, -8)
         for q, shape in ((HIST, (3, 40)), (SKIP, (50,)), (WEIGHT, (4, 3, 5)),
                          (TENSOR_MAX, (6, 7)))]
    )
]


def new_session(client, name, **options):
    client.create(name, quantizers=QUANTIZERS)
    return client.model(name, create=False, **options)


def server_state(session):
    """What must not depend on how the data came: histograms, counters and every method's
    amax (float32 bytes)."""
    session.flush()
    info = session.info()
    state = {"counters": {q: (s["batches"], s["elements"], s["nonfinite"])
                          for q, s in info["quantizers"].items()}}
    for q in (HIST, SKIP):
        h = session.histogram(q)
        state[q] = (h["counts"].tobytes(), h["edges"].tobytes(),
                    np.float32(h["abs_max"]).tobytes(), h["total"], h["nonfinite"])
    for method, args in METHODS:
        table = session.compute_amax(method=method, **args)["quantizers"]
        state[method] = {q: np.asarray(entry["amax"], dtype=np.float32).tobytes()
                         for q, entry in sorted(table.items())}
    return state


@pytest.fixture(scope="module")
def raw_state(client):
    session = new_session(client, "aggregate-raw")
    for q, x in DATA:
        session.record(q, x)
    state = server_state(session)
    # Batches count the tensors recorded.
    assert state["counters"][HIST][0] == 5
    return state



@pytest.mark.parametrize("send_every", [None, 1, 3])
def test_cpp_session_aggregation_equals_raw_streaming(client, raw_state, model_name, send_every):
    session = new_session(client, model_name, aggregate=True, send_every=send_every)
    for q, x in DATA:
        session.record(q, x)
    state = server_state(session)
    assert state == raw_state
    stats = session.stats()
    assert stats["applied_batches"] == len(DATA)  # the tensors the partials stand for
    # Only at the end: one partial per quantizer; every Record: one per tensor.
    expected = {None: 4, 1: len(DATA), 3: 4 * 2}[send_every]
    assert stats["applied_partials"] == expected


@pytest.mark.parametrize("torch_ops", [False, True], ids=["kernels", "torch_ops"])
@pytest.mark.parametrize("send_every", [None, 1, 3])
def test_python_aggregator_equals_raw_streaming(client, raw_state, model_name, monkeypatch,
                                                torch_ops, send_every):
    if torch_ops:  # count CPU tensors as if they lived on a GPU: the torch-ops path
        monkeypatch.setattr(_aggregate, "_on_device", lambda tensor: True)
    session = new_session(client, model_name)
    aggregator = qcal.Aggregator(session, send_every=send_every)
    for q, x in DATA:
        aggregator.add(q, x)
    aggregator.send_all()
    assert server_state(session) == raw_state


def test_raw_and_partial_batches_mix_in_one_quantizer(client, raw_state, model_name):
    new_session(client, model_name)
    raw = client.model(model_name, create=False)
    counted = client.model(model_name, create=False, aggregate=True, send_every=2)
    for i, (q, x) in enumerate(DATA):
        (raw if i % 3 else counted).record(q, x)
    counted.flush()
    state = server_state(raw)
    assert state == raw_state
    assert counted.stats()["applied_partials"] > 0


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 6 * 6, 4)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def calibrated_state(client, name, **options):
    torch.manual_seed(0)
    net = Net()
    session = client.model(name)
    with torch.no_grad(), qcal.torch.calibrate(net, session, weights=True, **options):
        for step in range(5):
            x = torch.randn(2, 2, 6, 6) * (step + 1)
            x[0, 0, 0, step] = float("nan")
            net(x)
    state = {"counters": {q: (s["batches"], s["elements"], s["nonfinite"])
                          for q, s in session.info()["quantizers"].items()}}
    for q in ("conv._input_quantizer", "fc._input_quantizer"):
        h = session.histogram(q)
        state[q] = (h["counts"].tobytes(), h["edges"].tobytes(), h["total"], h["nonfinite"])
    for method, args in METHODS:
        state[method] = session.compute_amax(method=method, **args)["quantizers"]
    return state, session.stats()


@pytest.mark.parametrize("send_every", [None, 1, 2])
def test_torch_calibrate_with_aggregation_equals_streaming(client, model_name, send_every):
    raw, raw_stats = calibrated_state(client, model_name + "-raw")
    counted, stats = calibrated_state(client, model_name, aggregate=True, send_every=send_every)
    assert counted == raw
    assert raw_stats["applied_partials"] == 0
    # 2 input quantizers sent after every send_every steps (and the rest at the end) + 2 weights.
    expected = {None: 4, 1: 2 * 5 + 2, 2: 2 * 3 + 2}[send_every]
    assert stats["applied_partials"] == expected


def test_reference_layout_model_refuses_aggregation(client, server, model_name):
    with grpc.insecure_channel(server.address) as channel:
        pb_grpc.CalibrationStub(channel).CreateModel(
            pb.CreateModelRequest(model=model_name.encode(),
                                  histogram_layout=pb.HISTOGRAM_LAYOUT_REFERENCE),
            timeout=30)
    session = client.model(model_name, create=False, aggregate=True)
    with pytest.raises(qcal.QcalError) as error:
        session.record("conv._input_quantizer", torch.ones(4))
    assert error.value.code == "FAILED_PRECONDITION"
    assert "pre-aggregation needs the mergeable histogram layout" in error.value.message
    assert f"model '{model_name}'" in error.value.message
    with pytest.raises(qcal.QcalError) as error:
        with qcal.torch.calibrate(Net(), client.model(model_name, create=False), aggregate=True):
            pass
    assert error.value.code == "FAILED_PRECONDITION"
    # Named as the session names it: model and quantizer.
    assert error.value.message.startswith(f"model '{model_name}', quantizer '"), error.value.message
    # Max quantizers aggregate in either layout; nothing else reached the model.
    session.record("w._weight_quantizer", torch.ones(2, 3))
    session.flush()
    assert list(session.info()["quantizers"]) == ["w._weight_quantizer"]


def test_a_partial_the_server_refuses_changes_nothing(client, model_name):
    session = new_session(client, model_name)
    good = qcal.count_partial(torch.arange(10.0), "histogram", 256)
    session.record_partial(HIST, good)
    session.flush()
    before = session.histogram(HIST)
    bad = qcal.count_partial(torch.arange(10.0), "histogram", 256)
    bad["histogram"]["exponent"] += 1  # not canonical for its abs_max
    session.record_partial(HIST, bad)
    with pytest.raises(qcal.QcalError) as error:
        session.flush()
    assert error.value.code == "INVALID_ARGUMENT"
    after = session.histogram(HIST)
    assert after["counts"].tobytes() == before["counts"].tobytes()
    assert after["total"] == before["total"] == 10


class Boom(Exception):
    pass


@pytest.mark.parametrize("aggregate", [False, True])
def test_an_exception_in_the_block_keeps_what_was_recorded(client, model_name, aggregate):
    # Raw streaming keeps the tensors queued before the exception; aggregate mode sends what it
    # counted, so both leave the same data on the server once the session is flushed.
    torch.manual_seed(0)
    net = Net()
    session = client.model(model_name)
    x = torch.randn(2, 2, 6, 6)
    with pytest.raises(Boom):
        with torch.no_grad(), qcal.torch.calibrate(net, session, aggregate=aggregate):
            net(x)
            raise Boom()
    session.flush()
    quantizers = session.info()["quantizers"]
    for q, elements in (("conv._input_quantizer", x.numel()), ("fc._input_quantizer", 2 * 108)):
        assert (quantizers[q]["batches"], quantizers[q]["elements"]) == (1, elements)
    assert session.stats()["applied_partials"] == (2 if aggregate else 0)


def test_a_failed_send_after_an_exception_does_not_hide_it(client, model_name):
    net = Net()
    session = client.model(model_name)
    sent = []

    def refuse(quantizer, partial):
        sent.append(quantizer)
        raise qcal.QcalError("UNAVAILABLE", "refused by the test")

    with pytest.raises(Boom):
        with torch.no_grad(), qcal.torch.calibrate(net, session, aggregate=True):
            net(torch.randn(2, 2, 6, 6))
            session.record_partial = refuse
            raise Boom()
    assert sent == ["conv._input_quantizer"]  # send_all was tried, its error dropped
