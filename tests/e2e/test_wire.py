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


# --- names that are not UTF-8 -------------------------------------------------------------------
# Name fields are bytes on the wire, so the server (not protobuf's parser, which reported INTERNAL
# with an empty message) checks them: INVALID_ARGUMENT "... is not valid UTF-8", nothing created.

BAD = b"bad\xffname"


def expect_invalid(call, *fragments):
    with pytest.raises(grpc.RpcError) as error:
        call()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    for fragment in fragments:
        assert fragment in error.value.details(), error.value.details()
    return error.value.details()


def model_names(stub):
    return sorted(m.name for m in stub.ListModels(pb.ListModelsRequest()).models)


def test_invalid_utf8_model_names_are_refused(stub, model):
    before = model_names(stub)
    expect_invalid(lambda: stub.GetModel(pb.GetModelRequest(model=BAD)), "not valid UTF-8")
    expect_invalid(lambda: stub.CreateModel(pb.CreateModelRequest(model=BAD)), "not valid UTF-8")
    expect_invalid(
        lambda: stub.Record(iter([pb.RecordRequest(model=BAD, quantizer=QB,
                                                   header=header(F32, 2, 3), data=SIX)])),
        "not valid UTF-8")
    expect_invalid(lambda: stub.GetHistogram(pb.GetHistogramRequest(model=BAD, quantizer=QB)),
                   "not valid UTF-8")
    expect_invalid(lambda: stub.ComputeAmax(pb.ComputeAmaxRequest(model=BAD, method=b"max")),
                   "not valid UTF-8")
    assert model_names(stub) == before


def test_invalid_utf8_quantizer_names_are_refused(stub, model, onnx_models):
    name = model.encode()
    before = state(stub, model)
    # A declared quantizer of a new model: the model is not created either.
    expect_invalid(
        lambda: stub.CreateModel(pb.CreateModelRequest(
            model=name + b"-new", quantizers=[pb.QuantizerSpec(name=BAD)])),
        "not valid UTF-8")
    assert model + "-new" not in model_names(stub)
    expect_invalid(
        lambda: stub.Record(iter([pb.RecordRequest(model=name, quantizer=BAD,
                                                   header=header(F32, 2, 3), data=SIX)])),
        "not valid UTF-8")
    expect_invalid(lambda: stub.GetHistogram(pb.GetHistogramRequest(model=name, quantizer=BAD)),
                   "not valid UTF-8")
    expect_invalid(
        lambda: stub.ComputeAmax(pb.ComputeAmaxRequest(
            model=name, method=b"max",
            overrides=[pb.OverrideEntry(key=BAD, value=pb.MethodOverride(method=b"max"))])),
        "not valid UTF-8")
    onnx_bytes = onnx_models[13].read_bytes()
    expect_invalid(
        lambda: stub.UploadOnnx(iter([pb.UploadOnnxRequest(
            model=name, data=onnx_bytes, tensor_map=[pb.TensorMapEntry(key=BAD, value=b"input")])])),
        "not valid UTF-8")
    expect_invalid(
        lambda: stub.UploadOnnx(iter([pb.UploadOnnxRequest(
            model=name, data=onnx_bytes, tensor_map=[pb.TensorMapEntry(key=QB, value=BAD)])])),
        "not valid UTF-8")
    assert state(stub, model) == before
    info = stub.GetModel(pb.GetModelRequest(model=name))
    assert not info.has_onnx and info.amax_method == ""
    assert [q.spec.name for q in info.quantizers] == [QB]


# --- what an old client sends -------------------------------------------------------------------
# The previous proto had `map<string, MethodOverride> overrides = 6` and `map<string, string>
# tensor_map = 3`. A map is, on the wire, a repeated nested message with the key in field 1 and
# the value in field 2: built here byte by byte, as that proto's encoder wrote it.

def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, payload):
    """A length-delimited field (wire type 2): strings, bytes, messages, map entries."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _old_map_entry(key, value):
    return _field(1, key) + _field(2, value)


def _raw_unary(server, method, request_bytes, response_type):
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(f"/qcal.v1.Calibration/{method}",
                                   response_deserializer=response_type.FromString)
        return call(request_bytes, timeout=60)


def _raw_stream(server, method, requests_bytes, response_type):
    with grpc.insecure_channel(server.address) as channel:
        call = channel.stream_unary(f"/qcal.v1.Calibration/{method}",
                                    response_deserializer=response_type.FromString)
        return call(iter(requests_bytes), timeout=60)


@pytest.fixture
def two_quantizers(client, model_name):
    session = client.model(model_name)
    rng = np.random.default_rng(5)
    session.record("conv1._input_quantizer", rng.normal(size=(2, 1, 8, 8)).astype(np.float32))
    session.record("fc._input_quantizer", np.abs(rng.normal(size=(2, 64))).astype(np.float32))
    session.flush()
    return model_name


def test_an_old_clients_override_map_is_applied(server, two_quantizers):
    model = two_quantizers.encode()
    overrides = _old_map_entry(b"fc._input_quantizer", _field(1, b"max"))  # MethodOverride.method
    request = _field(1, model) + _field(2, b"entropy") + _field(6, overrides)
    # The bytes are what the new message encodes too: one repeated OverrideEntry.
    parsed = pb.ComputeAmaxRequest.FromString(request)
    assert [(e.key, e.value.method) for e in parsed.overrides] == [(b"fc._input_quantizer",
                                                                    b"max")]
    response = _raw_unary(server, "ComputeAmax", request, pb.AmaxTableResponse)
    methods = {q.name: q.method for q in response.table.quantizers}
    assert methods == {"conv1._input_quantizer": "entropy", "fc._input_quantizer": "max"}


def test_an_old_clients_tensor_map_is_applied(server, two_quantizers, onnx_models):
    # fc's input would be matched to the Gemm's input; the old client's map binds it to "input".
    model = two_quantizers.encode()
    onnx_bytes = onnx_models[13].read_bytes()
    automatic = _raw_stream(server, "UploadOnnx", [_field(1, model) + _field(2, onnx_bytes)],
                            pb.UploadOnnxResponse)
    assert automatic.bindings["fc._input_quantizer"] not in ("", "input")
    tensor_map = _old_map_entry(b"fc._input_quantizer", b"input")
    request = _field(1, model) + _field(2, onnx_bytes) + _field(3, tensor_map)
    response = _raw_stream(server, "UploadOnnx", [request], pb.UploadOnnxResponse)
    assert response.bindings["fc._input_quantizer"] == "input"


def test_a_key_twice_is_refused(stub, two_quantizers, onnx_models):
    # Impossible in an old client's map; the repeated entries of the new proto can carry it.
    model = two_quantizers.encode()
    before = stub.GetModel(pb.GetModelRequest(model=model))
    twice = [pb.OverrideEntry(key=b"fc._input_quantizer", value=pb.MethodOverride(method=m))
             for m in (b"max", b"mse")]
    expect_invalid(
        lambda: stub.ComputeAmax(pb.ComputeAmaxRequest(model=model, method=b"max",
                                                       overrides=twice)),
        f"model '{two_quantizers}', ComputeAmax: quantizer 'fc._input_quantizer' has two "
        "overrides")
    pairs = [pb.TensorMapEntry(key=b"fc._input_quantizer", value=t) for t in (b"input", b"x")]
    expect_invalid(
        lambda: stub.UploadOnnx(iter([pb.UploadOnnxRequest(
            model=model, data=onnx_models[13].read_bytes(), tensor_map=pairs)])),
        "tensor_map names quantizer 'fc._input_quantizer' twice")
    info = stub.GetModel(pb.GetModelRequest(model=model))
    assert not info.has_onnx and info.amax_method == ""
    assert info == before


# --- sizes that once broke error reporting ------------------------------------------------------

def test_a_rank_of_a_million_is_refused_with_a_short_message(stub, model):
    before = state(stub, model)
    request = pb.RecordRequest(model=model.encode(), quantizer=QB,
                               header=header(F32, *([1] * 10**6)), data=b"\0" * 4)
    details = record_fails(stub, [request], "a batch of rank 1000000 has more than 64 dimensions")
    assert len(details) < 1024, len(details)
    assert state(stub, model) == before


def test_a_100kb_quantizer_name_gets_a_short_message(stub, model):
    before = state(stub, model)
    request = pb.RecordRequest(model=model.encode(), quantizer=b"q" * 100_000,
                               header=header(F32, 2, 3), data=SIX)
    details = record_fails(stub, [request], "is 100000 bytes long")
    assert len(details) < 1024, len(details)
    assert state(stub, model) == before


def test_export_naming_another_model_in_compute_gets_a_short_message(stub):
    long_name = b"m" * 100_000
    request = pb.ExportOnnxRequest(model=long_name,
                                   compute=pb.ComputeAmaxRequest(model=b"o" * 100_000,
                                                                 method=b"max"))
    with pytest.raises(grpc.RpcError) as error:
        list(stub.ExportOnnx(iter([request]), timeout=60))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    assert len(error.value.details()) < 1024, len(error.value.details())


def test_a_100kb_method_or_target_gets_a_short_message(stub, model):
    name = model.encode()
    details = expect_invalid(
        lambda: stub.ComputeAmax(pb.ComputeAmaxRequest(model=name, method=b"k" * 100_000)),
        "unknown method 'kkkk")
    assert len(details) < 1024, len(details)
    with pytest.raises(grpc.RpcError) as error:
        list(stub.ExportOnnx(iter([pb.ExportOnnxRequest(model=name, target=b"t" * 100_000)]),
                             timeout=60))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    assert "unknown target 'tttt" in error.value.details()
    assert len(error.value.details()) < 1024, len(error.value.details())


def _varint_field(number, value):
    """A varint field (wire type 0): ints, bools, enums."""
    return _varint(number << 3) + _varint(value)


def test_an_old_clients_descriptors_get_integer_quantizers(server, model_name):
    # A CreateModelRequest from before QuantizerSpec.format (field 8): default_input {num_bits 8,
    # calibrator MAX}, one declared quantizer. Every quantizer is then QUANT_FORMAT_INT.
    spec = _varint_field(2, 8) + _varint_field(5, pb.CALIBRATOR_MAX)
    declared = _field(1, b"q._input_quantizer") + _varint_field(2, 6)
    request = _field(1, model_name.encode()) + _field(2, declared) + _field(3, spec)
    info = _raw_unary(server, "CreateModel", request, pb.ModelInfo)
    assert info.default_input.format == pb.QUANT_FORMAT_INT
    assert info.default_input.calibrator == pb.CALIBRATOR_MAX
    assert [(q.spec.name, q.spec.num_bits, q.spec.format) for q in info.quantizers] == [
        (b"q._input_quantizer", 6, pb.QUANT_FORMAT_INT)]
