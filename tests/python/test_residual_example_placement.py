"""examples/residual_fashion_mnist/qdq_check.py counts Q/DQ on residual Add shortcuts and pool
inputs; these tests give it hand-placed Q/DQ on the example's own network (random weights,
exported as the example exports it) and check the counts and the problems it reports."""

import pathlib
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "residual_fashion_mnist"
sys.path.insert(0, str(EXAMPLE))

import qdq_check  # noqa: E402
import resnet_model  # noqa: E402


@pytest.fixture(scope="module")
def float_onnx(tmp_path_factory):
    torch.manual_seed(0)
    net = resnet_model.ResidualFashionCNN().eval()
    path = tmp_path_factory.mktemp("residual") / "float.onnx"
    torch.onnx.export(net, torch.zeros(1, 1, 28, 28), str(path), opset_version=13,
                      input_names=["images"], output_names=["logits"])
    return str(path)


def with_qdq(float_path, out_path, wanted):
    """Copies the float model with a QuantizeLinear -> DequantizeLinear pair on each input
    (node, input index) for which wanted(node, index, shortcut index or None) is true."""
    model = onnx.load(float_path)
    shortcuts = dict(qdq_check.residual_adds(float_path))
    graph = model.graph
    graph.initializer.extend([numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                              numpy_helper.from_array(np.array(0, np.int8), "zp")])
    nodes = []
    for node in graph.node:
        for i, tensor in enumerate(list(node.input)):
            if wanted(node, i, shortcuts.get(node.name)):
                q, dq = f"{node.name}/{i}/q", f"{node.name}/{i}/dq"
                nodes += [helper.make_node("QuantizeLinear", [tensor, "s", "zp"], [q]),
                          helper.make_node("DequantizeLinear", [q, "s", "zp"], [dq])]
                node.input[i] = dq
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    return out_path


def conv_inputs(node, i, _):
    return node.op_type in ("Conv", "Gemm") and i == 0


def tensorrt(node, i, shortcut):
    return (conv_inputs(node, i, shortcut) or (node.op_type == "Add" and i == shortcut)
            or (node.op_type in qdq_check.POOL_OPS and i == 0))


def test_finds_the_three_blocks_and_their_shortcuts(float_onnx):
    graph = onnx.load(float_onnx).graph
    producer = {out: node for node in graph.node for out in node.output}
    by_name = {node.name: node for node in graph.node}
    adds = qdq_check.residual_adds(float_onnx)
    assert [name for name, _ in adds] == ["/layer1/layer1.0/Add", "/layer2/layer2.0/Add",
                                          "/layer3/layer3.0/Add"]
    shortcut_sources = [producer[by_name[name].input[i]].name for name, i in adds]
    assert shortcut_sources == ["/maxpool/MaxPool",
                                "/layer2/layer2.0/downsample/downsample.0/Conv",
                                "/layer2/layer2.0/relu_1/Relu"]


def test_tensorrt_placement_counts_every_shortcut_and_pool(float_onnx, tmp_path):
    found = qdq_check.placement(float_onnx, with_qdq(float_onnx, str(tmp_path / "trt.onnx"),
                                                     tensorrt))
    assert {k: found[k] for k in ("adds", "shortcut_qdq", "conv_side_qdq", "pools", "pool_qdq",
                                  "missing", "q_nodes")} == {
        "adds": 3, "shortcut_qdq": 3, "conv_side_qdq": 0, "pools": 2, "pool_qdq": 2,
        "missing": [], "q_nodes": 9 + 3 + 2}  # 8 convs + fc, 3 shortcuts, 2 pools
    assert qdq_check.problems("trt", found) == []


def test_weighted_op_inputs_only_miss_shortcuts_and_pools(float_onnx, tmp_path):
    found = qdq_check.placement(float_onnx, with_qdq(float_onnx, str(tmp_path / "conv.onnx"),
                                                     conv_inputs))
    assert (found["shortcut_qdq"], found["pool_qdq"], found["q_nodes"]) == (0, 0, 9)
    assert found["missing"] == ["/maxpool/MaxPool input",  # in graph order
                                "/layer1/layer1.0/Add shortcut input 1",
                                "/layer2/layer2.0/Add shortcut input 1",
                                "/layer3/layer3.0/Add shortcut input 1",
                                "/avgpool/GlobalAveragePool input"]
    assert len(qdq_check.problems("conv", found)) == 5


def test_a_quantized_conv_side_input_is_a_problem(float_onnx, tmp_path):
    both = with_qdq(float_onnx, str(tmp_path / "both.onnx"),
                    lambda node, i, shortcut: tensorrt(node, i, shortcut) or node.op_type == "Add")
    found = qdq_check.placement(float_onnx, both)
    assert (found["shortcut_qdq"], found["conv_side_qdq"]) == (3, 3)
    assert qdq_check.problems("both", found) == [
        "both: 3 conv-side Add input(s) carry Q/DQ (TensorRT fuses that input into the conv; "
        "only the shortcut should)"]
