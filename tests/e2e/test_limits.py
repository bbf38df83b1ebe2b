"""The server's bounds on what one model may make it hold or send (issue 8, defects 1 and 2):
--max-channels, --max-num-bins and --max-response-bytes, against the real qcal-server. Each
refusal names its flag and changes nothing."""

import grpc
import numpy as np
import pytest

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
import qcal
from qcal_server_process import QcalServerProcess

WEIGHT = "w._weight_quantizer"


@pytest.fixture(scope="module")
def limited(server_bin):
    # Small limits so the test sends kilobytes, not the 512 MiB.
    with QcalServerProcess(server_bin, "--max-channels", "4096", "--max-num-bins", "8192",
                           "--max-response-bytes", str(1 << 20)) as process:
        yield process


@pytest.fixture
def stub(limited):
    with grpc.insecure_channel(limited.address) as channel:
        yield pb_grpc.CalibrationStub(channel)


def record_wide_table(server, model_name):
    """9 weight quantizers of 4096 channels (channel c of l{q} has amax (c + 1) * (q + 1)): the
    server's bound of the response is about 185 KB for the table's message form and 960 KB for
    its JSON form (26 bytes a value), each under 1 MiB, together over it."""
    session = qcal.Client(server.address).model(model_name)
    for q in range(9):
        session.record(f"l{q}._weight_quantizer",
                       np.arange(1, 4097, dtype=np.float32).reshape(4096, 1) * (q + 1))
    session.flush()
    return session


def test_a_weight_with_more_channels_than_the_limit_is_refused(limited, model_name):
    # The crash: one 1-D weight batch is one channel per value on axis 0.
    session = qcal.Client(limited.address).model(model_name)
    session.record(WEIGHT, np.ones(4097, np.float32))
    with pytest.raises(qcal.QcalError) as error:
        session.flush()
    assert error.value.code == "RESOURCE_EXHAUSTED"
    assert ("the batch has 4097 channels on axis 0, more than the server's --max-channels 4096"
            in error.value.message)
    assert session.info()["quantizers"] == {}


def test_num_bins_above_the_limit_is_refused(stub, model_name):
    request = pb.CreateModelRequest(model=model_name.encode(),
                                    default_input=pb.QuantizerSpec(num_bins=8193))
    with pytest.raises(grpc.RpcError) as error:
        stub.CreateModel(request)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "num_bins 8193 is more than the server's --max-num-bins 8192" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        stub.GetModel(pb.GetModelRequest(model=model_name.encode()))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_response_over_the_limit_is_refused_and_stores_nothing(limited, stub, model_name):
    session = record_wide_table(limited, model_name)
    model = model_name.encode()
    with pytest.raises(grpc.RpcError) as error:
        stub.ComputeAmax(pb.ComputeAmaxRequest(model=model, method=b"max"))
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "more than the server's --max-response-bytes 1048576; nothing was stored" in (
        error.value.details())
    with pytest.raises(grpc.RpcError) as error:
        stub.GetAmaxTable(pb.GetAmaxTableRequest(model=model))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stub.GetModel(pb.GetModelRequest(model=model)).amax_method == ""

    # Asking for one form fits, and that table is stored.
    table = stub.ComputeAmax(pb.ComputeAmaxRequest(model=model, method=b"max",
                                                   forms=[pb.TABLE_FORM_MESSAGE]))
    assert table.json == "" and table.trt_cache == ""
    amax = {q.name: list(q.amax) for q in table.table.quantizers}
    assert amax["l3._weight_quantizer"][:3] == [4.0, 8.0, 12.0]
    assert len(amax["l0._weight_quantizer"]) == 4096
    assert stub.GetModel(pb.GetModelRequest(model=model)).amax_method == "max"
    json_only = stub.GetAmaxTable(pb.GetAmaxTableRequest(model=model, forms=[pb.TABLE_FORM_JSON]))
    assert json_only.json.startswith("{") and not json_only.HasField("table")


def test_clients_ask_only_for_the_forms_they_use(cli_bin, limited, model_name):
    # The table of the test above: all three forms pass 1 MiB, each one alone does not. `qcal
    # amax` asks for the form it prints (and the TensorRT cache, for its warnings), Python's
    # compute_amax for the JSON and the cache.
    from conftest import Cli

    session = record_wide_table(limited, model_name)
    cli = Cli(cli_bin, limited.address)
    table = cli.json("amax", model_name, "--method", "max", "--format", "json")
    assert len(table["quantizers"]) == 9
    assert table["quantizers"]["l2._weight_quantizer"]["amax"][:2] == [3.0, 6.0]
    assert "l0._weight_quantizer" in cli.ok("amax", model_name, "--method", "max")
    assert session.compute_amax(method="max")["quantizers"]["l1._weight_quantizer"]["amax"][0] == 2


def test_too_many_channels_are_refused_at_the_header(stub, model_name):
    # A new user's finding: the channel count was checked once the whole batch had arrived, so
    # a 512 MiB batch was received and buffered first. It is checked when the header arrives:
    # a stream that sends only the header of 2^27 channels gets the refusal, not "the stream
    # ended mid-batch".
    stub.CreateModel(pb.CreateModelRequest(model=model_name.encode()))
    header = pb.TensorHeader(dtype=pb.DTYPE_FLOAT32, shape=[1 << 27])
    with pytest.raises(grpc.RpcError) as error:
        stub.Record(iter([pb.RecordRequest(model=model_name.encode(), quantizer=WEIGHT.encode(),
                                           header=header)]), timeout=60)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "the batch has 134217728 channels on axis 0, more than the server's --max-channels" in (
        error.value.details())
    assert len(stub.GetModel(pb.GetModelRequest(model=model_name.encode())).quantizers) == 0


def test_a_form_that_is_no_form_is_refused(stub, model_name):
    stub.CreateModel(pb.CreateModelRequest(model=model_name.encode()))
    with pytest.raises(grpc.RpcError) as error:
        stub.ComputeAmax(pb.ComputeAmaxRequest(model=model_name.encode(), method=b"max",
                                               forms=[pb.TABLE_FORM_JSON, 99]))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "forms holds 99, which is no table form" in error.value.details()
