"""TensorRT placement on torchvision's resnet18 (random weights, eval mode, BatchNorm folded by
torch.onnx at opset 13), calibrated through qcal.torch's hooks: every residual Add's shortcut has
Q/DQ and its conv side none, both pools' inputs have Q/DQ, every Conv and Gemm input and weight
has Q/DQ, and --explain says so (README, "TensorRT placement rules")."""
import io

import onnx
import pytest
import torch
import torchvision

import qcal
import qcal.torch
from qcal_server_process import QcalServerProcess


@pytest.fixture(scope="module")
def client(server_bin):
    """resnet18's ONNX is 45 MB: a server of its own whose --max-batch-bytes lets it in."""
    with QcalServerProcess(server_bin, "--max-batch-bytes", str(64 << 20)) as process:
        yield qcal.Client(process.address, timeout=120)


def _export_float(net):
    buffer = io.BytesIO()
    torch.onnx.export(net, torch.randn(1, 3, 64, 64), buffer, opset_version=13)
    return buffer.getvalue()


def test_resnet18_residual_pool_and_weighted_op_placement(client, model_name):
    torch.manual_seed(0)
    net = torchvision.models.resnet18().eval()
    float_onnx = _export_float(net)
    session = client.model(model_name)
    with torch.no_grad(), qcal.torch.calibrate(net, session):
        for _ in range(2):
            net(torch.randn(2, 3, 64, 64))
    qdq = onnx.load_from_string(session.export_onnx(float_onnx, method="max", explain=True))
    onnx.checker.check_model(qdq)
    producer = {out: n for n in qdq.graph.node for out in n.output}

    def from_dq(tensor):
        return tensor in producer and producer[tensor].op_type == "DequantizeLinear"

    adds = [n for n in qdq.graph.node if n.op_type == "Add"]
    assert len(adds) == 8
    for add in adds:
        sides = [from_dq(t) for t in add.input]
        assert sorted(sides) == [False, True], add.name
        conv_side = add.input[sides.index(False)]
        assert producer[conv_side].op_type == "Conv", add.name
    for node in qdq.graph.node:
        if node.op_type in ("Conv", "Gemm"):
            assert from_dq(node.input[0]) and from_dq(node.input[1]), node.name
        if node.op_type in ("MaxPool", "GlobalAveragePool"):
            assert from_dq(node.input[0]), node.name

    explained = {(e["node"], e["input"]): e for e in session.last_export_explain}
    # BasicBlock without downsample: the shortcut is conv1's input, one shared pair.
    plain = explained[("/layer1/layer1.0/Add", 1)]
    assert plain["decision"] == "quantized" and plain["rule"] == "residual add shortcut"
    assert plain["quantizer"] == "layer1.0.conv1._input_quantizer"
    assert "'layer1.0.residual_quantizer' is not used" in plain["reason"]
    # With downsample: the downsample conv's output, from the block's residual quantizer.
    down = explained[("/layer2/layer2.0/Add", 1)]
    assert down["tensor"] == "/layer2/layer2.0/downsample/downsample.0/Conv_output_0"
    assert down["quantizer"] == "layer2.0.residual_quantizer"
    assert explained[("/layer2/layer2.0/Add", 0)]["rule"] == "residual add conv side"
    assert explained[("/avgpool/GlobalAveragePool", 0)]["quantizer"] == "avgpool._input_quantizer"
