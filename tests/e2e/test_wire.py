"""Bad Record streams the qcal client never sends (it checks byte counts and dtypes itself), sent
with a raw gRPC stub (Python stubs generated from calibration.proto): the server refuses each
with INVALID_ARGUMENT and keeps its state. Also: the result does not depend on the chunking."""

import grpc
import numpy as np
import pytest

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc

Q = "x._input_quantizer"
QB = Q.encode()  # name fields are bytes on the wire


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.CalibrationStub(channel)


@pytest.fixture
def model(client, model_name):
    session = client.model(model_name)
    session.record(Q, np.array([0.5, -3.0, 2.0], np.float32))
    session.flush()
    return model_name


def header(dtype, *shape):
    return pb.TensorHeader(dtype=dtype, shape=list(shape))


def state(stub, model):
    info = stub.GetModel(pb.GetModelRequest(model=model.encode()))
    hist = stub.GetHistogram(pb.GetHistogramRequest(model=model.encode(), quantizer=QB))
    return info.SerializeToString(deterministic=True), hist.SerializeToString(deterministic=True)


def record_fails(stub, messages, message):
    with pytest.raises(grpc.RpcError) as error:
        stub.Record(iter(messages), timeout=60)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details(), error.value.details()
    return error.value.details()


F32 = pb.DTYPE_FLOAT32
SIX = np.arange(6, dtype=np.float32).tobytes()  # 24 bytes, a float32 [2, 3]


@pytest.mark.parametrize(
    "messages, message",
    [
        # byte count != shape x dtype size: too few (the stream ends mid-batch) ...
        ([pb.RecordRequest(quantizer=QB, header=header(F32, 2, 3), data=SIX[:20])],
         "the stream ended mid-batch: quantizer 'x._input_quantizer' got 20 of 24 bytes"),
        # ... too many, in one message or over two
        ([pb.RecordRequest(quantizer=QB, header=header(F32, 2, 3), data=SIX + b"1234")],
         "28 bytes arrived for a batch whose shape and dtype declare 24 bytes"),
        ([pb.RecordRequest(quantizer=QB, header=header(F32, 2, 3), data=SIX[:16]),
          pb.RecordRequest(data=SIX[16:] + b"\0")],
         "25 bytes arrived for a batch whose shape and dtype declare 24 bytes"),
        # unknown dtype
        ([pb.RecordRequest(quantizer=QB, header=header(pb.DTYPE_UNSPECIFIED, 2), data=b"\0" * 8)],
         "unknown dtype 0 (DTYPE_UNSPECIFIED)"),
        ([pb.RecordRequest(quantizer=QB, header=header(99, 2), data=b"\0" * 8)], "unknown dtype 99"),
        # empty tensor and a negative dimension
        ([pb.RecordRequest(quantizer=QB, header=header(F32, 0, 3))], "empty tensors are refused"),
        ([pb.RecordRequest(quantizer=QB, header=header(F32, -2, 3), data=SIX)], "dimension 0 is -2"),
        # the chunking contract: data without a batch, a header before the batch completes
        ([pb.RecordRequest(data=SIX)], "24 data bytes arrived without a batch header"),
        ([pb.RecordRequest(quantizer=QB, header=header(F32, 2, 3), data=SIX[:8]),
          pb.RecordRequest(quantizer=QB, header=header(F32, 2, 3), data=SIX)],
         "a new batch header arrived before the batch of quantizer 'x._input_quantizer' was "
         "complete"),
    ],
    ids=["too-few-bytes", "too-many-bytes", "too-many-bytes-chunked", "dtype-unspecified",
         "dtype-99", "empty", "negative-dim", "data-without-header", "header-mid-batch"],
)
def test_malformed_record_streams_change_nothing(stub, model, messages, message):
    before = state(stub, model)
    messages[0].model = model.encode()
    record_fails(stub, messages, message)
    assert state(stub, model) == before


def test_batches_before_the_refused_one_stay_applied(stub, model):
    good = pb.RecordRequest(model=model.encode(), quantizer=QB, header=header(F32, 2, 3), data=SIX)
    bad = pb.RecordRequest(quantizer=QB, header=header(F32, 2, 3), data=SIX[:4])
    record_fails(stub, [good, bad], "got 4 of 24 bytes")
    info = stub.GetModel(pb.GetModelRequest(model=model.encode()))
    (stats,) = [q for q in info.quantizers if q.spec.name == QB]
    assert stats.batches == 2 and stats.elements == 3 + 6


def test_the_chunk_size_does_not_change_the_result(client, model_name):
    rng = np.random.default_rng(4)
    batches = [rng.normal(size=(3, 333)).astype(np.float32) * s for s in (1.0, 4.0, 0.5)]
    histograms = []
    for name, chunk_bytes in ((f"{model_name}-whole", None), (f"{model_name}-7", 7)):
        session = client.model(name, chunk_bytes=chunk_bytes)
        for batch in batches:
            session.record(Q, batch)
        histograms.append(session.histogram(Q))
    whole, chunked = histograms
    assert np.array_equal(whole["counts"], chunked["counts"])
    assert np.array_equal(whole["edges"], chunked["edges"])
    top = max(np.abs(b).max() for b in batches)
    assert whole["abs_max"] == chunked["abs_max"] == top
