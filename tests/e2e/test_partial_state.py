"""Partial states on Record and state files through SaveState/LoadState, sent with raw gRPC stubs
(Python stubs generated from calibration.proto) to a real qcal-server: what the server merges
equals what it computes from raw tensors, state moves between models bit for bit, and every bad
partial state or state file is refused with its code and message, changing nothing."""

import math
import subprocess

import grpc
import numpy as np
import pytest

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
from qcal_server_process import QcalServerProcess

Q = "x._input_quantizer"
W = "fc._weight_quantizer"
NUM_BINS = 8  # small, so the states in these tests are short
F32 = pb.DTYPE_FLOAT32
METHODS = ("max", "entropy", "mse", "percentile")


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.CalibrationStub(channel)


def create(stub, model, layout=pb.HISTOGRAM_LAYOUT_UNSPECIFIED, num_bins=NUM_BINS):
    request = pb.CreateModelRequest(model=model.encode(), histogram_layout=layout)
    request.default_input.num_bins = num_bins
    request.default_input.calibrator = pb.CALIBRATOR_HISTOGRAM
    request.default_weight.calibrator = pb.CALIBRATOR_MAX
    request.default_weight.axis = 0
    return stub.CreateModel(request)


def raw(model, quantizer, values):
    values = np.asarray(values, np.float32)
    return pb.RecordRequest(
        model=model.encode(),
        quantizer=quantizer.encode(),
        header=pb.TensorHeader(dtype=F32, shape=list(values.shape)),
        data=values.tobytes(),
    )


def partial_message(model, quantizer, partial):
    return pb.RecordRequest(model=model.encode(), quantizer=quantizer.encode(), partial=partial)


def mergeable(values, num_bins=NUM_BINS):
    """The canonical mergeable-layout state of `values` (HistogramLayout's rule), in Python."""
    a = np.abs(np.asarray(values, np.float32)).astype(np.float64)
    finite = a[np.isfinite(a)]
    m = float(finite.max()) if finite.size else 0.0
    if m == 0.0:
        return pb.MergeableHistogram(exponent=0, counts=[], abs_max=0.0, zeros=finite.size)
    k = -149
    while math.floor(m / 2.0**k) + 1 > 2 * num_bins:
        k += 1
    bins = math.floor(m / 2.0**k) + 1
    counts = np.bincount(np.floor(finite / 2.0**k).astype(np.int64), minlength=bins)
    return pb.MergeableHistogram(exponent=k, counts=counts.tolist(), abs_max=m, zeros=0)


def partial_of(values, batches=1):
    values = np.asarray(values, np.float32)
    return pb.PartialState(
        batches=batches,
        elements=values.size,
        nonfinite=int((~np.isfinite(values)).sum()),
        histogram=mergeable(values),
    )


def record(stub, messages):
    return stub.Record(iter(messages), timeout=60)


def histogram(stub, model, quantizer=Q):
    return stub.GetHistogram(pb.GetHistogramRequest(model=model.encode(), quantizer=quantizer.encode()))


def amax(stub, model, method):
    request = pb.ComputeAmaxRequest(model=model.encode(), method=method.encode())
    if method in ("entropy", "mse"):
        request.start_bin = 1  # the default 128 lies beyond these small histograms
    request.forms.append(pb.TABLE_FORM_MESSAGE)
    table = stub.ComputeAmax(request).table
    return {q.name: list(q.amax) for q in table.quantizers}


def state(stub, model):
    """Everything GetModel and GetHistogram say of `model`, as bytes."""
    info = stub.GetModel(pb.GetModelRequest(model=model.encode()))
    parts = [info.SerializeToString(deterministic=True)]
    for q in info.quantizers:
        if q.spec.calibrator == pb.CALIBRATOR_HISTOGRAM and q.batches:
            parts.append(histogram(stub, model, q.spec.name.decode()).SerializeToString(deterministic=True))
    return b"".join(parts)


def refused(call, code, message):
    with pytest.raises(grpc.RpcError) as error:
        call()
    assert error.value.code() == code, error.value.details()
    assert message in error.value.details(), error.value.details()
    return error.value.details()


def save(stub, model):
    chunks = list(stub.SaveState(pb.SaveStateRequest(model=model.encode()), timeout=60))
    return b"".join(c.data for c in chunks)


def load(stub, model, data, merge=False, chunk=1 << 16):
    messages = [pb.LoadStateRequest(model=model.encode(), merge=merge)]
    messages += [pb.LoadStateRequest(data=data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return stub.LoadState(iter(messages), timeout=60)


RNG = np.random.default_rng(9)
DATA = np.concatenate([RNG.normal(0, 2, 300), [0.0, 0.0, np.inf, np.nan]]).astype(np.float32)


def test_an_old_clients_create_model_gets_the_mergeable_layout(stub, model_name):
    info = stub.CreateModel(pb.CreateModelRequest(model=model_name.encode()))
    assert info.histogram_layout == pb.HISTOGRAM_LAYOUT_MERGEABLE
    assert stub.GetModel(pb.GetModelRequest(model=model_name.encode())).histogram_layout == (
        pb.HISTOGRAM_LAYOUT_MERGEABLE
    )


def test_partial_states_equal_raw_batches_and_mix_with_them(stub, model_name):
    create(stub, model_name + "-raw")
    create(stub, model_name + "-mixed")
    record(stub, [raw(model_name + "-raw", Q, part) for part in np.array_split(DATA, 3)])
    first, rest = DATA[:100], DATA[100:]
    partial = partial_of(rest, batches=2)
    response = record(
        stub, [raw(model_name + "-mixed", Q, first), partial_message(model_name + "-mixed", Q, partial)]
    )
    assert (response.batches, response.partials) == (3, 1)
    assert response.elements == DATA.size and response.nonfinite == 2
    assert response.bytes == first.nbytes + partial.ByteSize()
    a, b = histogram(stub, model_name + "-raw"), histogram(stub, model_name + "-mixed")
    assert list(a.counts) == list(b.counts) and list(a.edges) == list(b.edges)
    assert (a.abs_max, a.total, a.nonfinite) == (b.abs_max, b.total, b.nonfinite)
    for method in METHODS:
        assert amax(stub, model_name + "-raw", method) == amax(stub, model_name + "-mixed", method)


def test_max_partial_states_per_tensor_and_per_channel(stub, model_name):
    create(stub, model_name)
    record(stub, [raw(model_name, W, np.array([[1, -2], [3, 0.5]], np.float32))])
    record(
        stub,
        [
            partial_message(
                model_name, W, pb.PartialState(batches=1, elements=4, max=pb.MaxState(amax=[2.5, 1.0], axis=0))
            )
        ],
    )
    assert amax(stub, model_name, "max")[W] == [2.5, 3.0]


GOOD = partial_of(DATA[:50])


def _with(**fields):
    p = pb.PartialState()
    p.CopyFrom(GOOD)
    for name, value in fields.items():
        if name == "exponent":
            p.histogram.exponent = value
        elif name == "counts":
            del p.histogram.counts[:]
            p.histogram.counts.extend(value)
        else:
            setattr(p, name, value)
    return p


BAD_PARTIALS = [
    (Q, _with(exponent=GOOD.histogram.exponent - 1), grpc.StatusCode.INVALID_ARGUMENT, "exponent"),
    (Q, _with(counts=list(GOOD.histogram.counts[:-1]) + [0]), grpc.StatusCode.INVALID_ARGUMENT, "histogram"),
    (Q, _with(elements=GOOD.elements + 1), grpc.StatusCode.INVALID_ARGUMENT, "add up to"),
    (Q, _with(batches=0), grpc.StatusCode.INVALID_ARGUMENT, "batches is 0"),
    (Q, _with(nonfinite=GOOD.elements + 1), grpc.StatusCode.INVALID_ARGUMENT, "is more than elements"),
    (Q, pb.PartialState(batches=1, elements=1, max=pb.MaxState(amax=[1.0])),
     grpc.StatusCode.FAILED_PRECONDITION, "the quantizer has a histogram calibrator"),
    (W, GOOD, grpc.StatusCode.FAILED_PRECONDITION, "the quantizer has a max calibrator"),
    (W, pb.PartialState(batches=1, elements=2, max=pb.MaxState(amax=[1.0, -1.0], axis=0)),
     grpc.StatusCode.INVALID_ARGUMENT, "max.amax[1] is -1"),
    (W, pb.PartialState(batches=1, elements=2, max=pb.MaxState(amax=[1.0, float("nan")], axis=0)),
     grpc.StatusCode.INVALID_ARGUMENT, "max.amax[1] is nan"),
    (W, pb.PartialState(batches=1, elements=2, max=pb.MaxState(amax=[1.0, 2.0], axis=1)),
     grpc.StatusCode.INVALID_ARGUMENT, "max has axis 1, but the quantizer has axis 0"),
    (W, pb.PartialState(batches=1, elements=2, max=pb.MaxState(amax=[1.0, 2.0])),
     grpc.StatusCode.INVALID_ARGUMENT, "max has no axis (per tensor), but the quantizer has axis 0"),
    (W, pb.PartialState(batches=1, elements=3, max=pb.MaxState(amax=[1.0, 2.0, 3.0], axis=0)),
     grpc.StatusCode.INVALID_ARGUMENT, "max holds 3 channels on axis 0 but earlier batches had 2"),
    (Q, pb.PartialState(batches=1, elements=1), grpc.StatusCode.INVALID_ARGUMENT,
     "partial state holds neither `histogram` nor `max`"),
    (Q, _with(batches=2**63 - 1), grpc.StatusCode.OUT_OF_RANGE, "batches"),
]


@pytest.mark.parametrize("quantizer, partial, code, message", BAD_PARTIALS)
def test_bad_partial_states_are_refused_and_change_nothing(stub, model_name, quantizer, partial, code, message):
    create(stub, model_name)
    record(stub, [raw(model_name, Q, DATA[:20]), raw(model_name, W, np.ones((2, 3), np.float32))])
    if code == grpc.StatusCode.OUT_OF_RANGE:  # the counter is full once; the next would wrap
        record(stub, [partial_message(model_name, Q, _with(batches=1))])
    before = state(stub, model_name)
    details = refused(lambda: record(stub, [partial_message(model_name, quantizer, partial)]), code, message)
    # (A name longer than 64 bytes is cut short in messages about a message that failed to parse.)
    assert f"model '{model_name[:60]}" in details and f"quantizer '{quantizer}'" in details
    assert state(stub, model_name) == before


def test_partial_states_need_the_mergeable_layout_and_a_whole_batch(stub, model_name):
    create(stub, model_name, layout=pb.HISTOGRAM_LAYOUT_REFERENCE)
    record(stub, [raw(model_name, Q, DATA[:20])])
    before = state(stub, model_name)
    refused(
        lambda: record(stub, [partial_message(model_name, Q, GOOD)]),
        grpc.StatusCode.FAILED_PRECONDITION,
        "the model uses the reference histogram layout",
    )
    half = raw(model_name, Q, DATA[:20])
    half.data = half.data[:40]
    refused(
        lambda: record(stub, [half, partial_message(model_name, Q, GOOD)]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "arrived while the batch of 'x._input_quantizer' is incomplete",
    )
    assert state(stub, model_name) == before


@pytest.mark.parametrize("layout", [pb.HISTOGRAM_LAYOUT_MERGEABLE, pb.HISTOGRAM_LAYOUT_REFERENCE])
def test_save_and_load_give_the_same_state_and_amax(stub, model_name, layout):
    create(stub, model_name, layout=layout)
    record(stub, [raw(model_name, Q, DATA[:150]), raw(model_name, Q, DATA[150:])])
    record(stub, [raw(model_name, W, np.array([[1, -2], [3, 0.5]], np.float32))])
    expected = {m: amax(stub, model_name, m) for m in METHODS}
    data = save(stub, model_name)
    assert data.startswith(b"\x0a\x11qcal.v1.StateFile")
    info = load(stub, model_name + "-copy", data, chunk=100)
    assert info.histogram_layout == layout
    # The stored table (the last ComputeAmax's) comes along.
    assert info.amax_method == "percentile"
    a, b = histogram(stub, model_name), histogram(stub, model_name + "-copy")
    b.model = a.model
    assert a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)
    stats = lambda name: [  # noqa: E731
        q.SerializeToString(deterministic=True)
        for q in stub.GetModel(pb.GetModelRequest(model=name.encode())).quantizers
    ]
    assert stats(model_name) == stats(model_name + "-copy")
    for method in METHODS:
        assert amax(stub, model_name + "-copy", method) == expected[method]


def test_merged_halves_equal_all_the_data(stub, model_name):
    for suffix in ("-all", "-a", "-b"):
        create(stub, model_name + suffix)
    record(stub, [raw(model_name + "-all", Q, DATA), raw(model_name + "-all", W, np.eye(3, dtype=np.float32))])
    record(stub, [raw(model_name + "-a", Q, DATA[:120]), raw(model_name + "-a", W, np.eye(3, dtype=np.float32)[:, :1])])
    record(stub, [raw(model_name + "-b", Q, DATA[120:]), raw(model_name + "-b", W, np.eye(3, dtype=np.float32)[:, 1:])])
    info = load(stub, model_name + "-a", save(stub, model_name + "-b"), merge=True)
    stats = {q.spec.name.decode(): q for q in info.quantizers}
    assert (stats[Q].batches, stats[Q].elements, stats[Q].nonfinite) == (2, DATA.size, 2)
    a, b = histogram(stub, model_name + "-all"), histogram(stub, model_name + "-a")
    assert (list(a.counts), list(a.edges), a.abs_max, a.total) == (list(b.counts), list(b.edges), b.abs_max, b.total)
    for method in METHODS:
        assert amax(stub, model_name + "-a", method) == amax(stub, model_name + "-all", method)


def _corrupt(data):
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x40
    newer = pb.StateFile()
    newer.ParseFromString(data)
    newer.format_version = 3
    magic = pb.StateFile()
    magic.ParseFromString(data)
    magic.magic = "qcal.v0.Other"
    return [
        (bytes(flipped), grpc.StatusCode.INVALID_ARGUMENT, "the state file is"),
        (data[: len(data) - 7], grpc.StatusCode.INVALID_ARGUMENT, "the state file is"),
        (b"\x89PNG\r\n\x1a\n not a state", grpc.StatusCode.INVALID_ARGUMENT, "not a qcal state file"),
        (newer.SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT, "format_version 3"),
        (magic.SerializeToString(), grpc.StatusCode.INVALID_ARGUMENT, "its magic is 'qcal.v0.Other'"),
    ]


def test_bad_state_files_are_refused_and_change_nothing(stub, model_name):
    create(stub, model_name)
    record(stub, [raw(model_name, Q, DATA)])
    data = save(stub, model_name)
    before = state(stub, model_name)
    for bad, code, message in _corrupt(data):
        refused(lambda: load(stub, model_name + "-new", bad), code, message)
        refused(lambda: load(stub, model_name, bad, merge=True), code, message)
    refused(lambda: load(stub, model_name, data), grpc.StatusCode.ALREADY_EXISTS, "already exists")
    refused(lambda: load(stub, model_name + "-none", data, merge=True), grpc.StatusCode.NOT_FOUND,
            f"unknown model '{model_name}-none'")
    # --max-batch-bytes is 1 MiB in this suite.
    refused(lambda: load(stub, model_name + "-new", data + b"\0" * (1 << 20)),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "--max-batch-bytes")
    names = [m.name for m in stub.ListModels(pb.ListModelsRequest()).models]
    assert model_name + "-new" not in names and model_name + "-none" not in names
    assert state(stub, model_name) == before


def test_merges_of_other_configurations_are_refused_and_change_nothing(stub, model_name):
    create(stub, model_name)
    create(stub, model_name + "-bins", num_bins=16)
    create(stub, model_name + "-ref", layout=pb.HISTOGRAM_LAYOUT_REFERENCE)
    create(stub, model_name + "-ref2", layout=pb.HISTOGRAM_LAYOUT_REFERENCE)
    for name in (model_name, model_name + "-bins"):
        record(stub, [raw(name, Q, DATA)])
    record(stub, [raw(model_name + "-ref", Q, DATA[:100])])
    record(stub, [raw(model_name + "-ref2", Q, DATA[100:])])
    before = state(stub, model_name)
    refused(lambda: load(stub, model_name, save(stub, model_name + "-bins"), merge=True),
            grpc.StatusCode.FAILED_PRECONDITION, "default_input num_bins 8, not 16")
    refused(lambda: load(stub, model_name, save(stub, model_name + "-ref"), merge=True),
            grpc.StatusCode.FAILED_PRECONDITION, "histogram_layout mergeable, not reference")
    assert state(stub, model_name) == before
    ref_before = state(stub, model_name + "-ref")
    refused(lambda: load(stub, model_name + "-ref", save(stub, model_name + "-ref2"), merge=True),
            grpc.StatusCode.FAILED_PRECONDITION, "merge only with identical edges")
    assert state(stub, model_name + "-ref") == ref_before


def test_the_servers_default_layout_is_a_flag_and_exist_ok_compares_layouts(server_bin):
    with QcalServerProcess(server_bin, "--default-histogram-layout", "reference") as process:
        with grpc.insecure_channel(process.address) as channel:
            stub = pb_grpc.CalibrationStub(channel)
            unset = pb.CreateModelRequest(model=b"m", exist_ok=True)
            assert stub.CreateModel(unset).histogram_layout == pb.HISTOGRAM_LAYOUT_REFERENCE
            assert stub.CreateModel(unset).histogram_layout == pb.HISTOGRAM_LAYOUT_REFERENCE
            other = pb.CreateModelRequest(
                model=b"m", exist_ok=True, histogram_layout=pb.HISTOGRAM_LAYOUT_MERGEABLE
            )
            refused(lambda: stub.CreateModel(other), grpc.StatusCode.FAILED_PRECONDITION,
                    "model 'm' exists with histogram_layout reference, not mergeable")
            other.model = b"n"
            assert stub.CreateModel(other).histogram_layout == pb.HISTOGRAM_LAYOUT_MERGEABLE
            # ResetModel keeps the layout.
            reset = stub.ResetModel(pb.ResetModelRequest(model=b"n"))
            assert reset.histogram_layout == pb.HISTOGRAM_LAYOUT_MERGEABLE
            bad = pb.CreateModelRequest(model=b"o")
            bad.histogram_layout = 5
            refused(lambda: stub.CreateModel(bad), grpc.StatusCode.INVALID_ARGUMENT,
                    "model 'o': histogram_layout 5 is no layout")
    usage = subprocess.run([str(server_bin), "--default-histogram-layout", "pytorch"],
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "--default-histogram-layout" in usage.stderr
