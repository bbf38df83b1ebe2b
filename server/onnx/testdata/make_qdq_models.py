#!/usr/bin/python3
"""Regenerates the ONNX models that already carry Q/DQ, for existing_qdq_test.cc.

Run with Debian's interpreter, which has torch 1.13 and onnx 1.12:
    /usr/bin/python3 server/onnx/testdata/make_qdq_models.py

pytorch-quantization is not installed here. Its TensorQuantizer, when exporting, calls
torch.fake_quantize_per_tensor_affine(x, amax / bound, 0, -bound - 1, bound) (0..bound when
unsigned) and, per channel, torch.fake_quantize_per_channel_affine(w, amax / bound, zeros,
axis, ...) (pytorch_quantization/nn/modules/tensor_quantizer.py, _fb_fake_quant). FakeQuant below
is a module named "_input_quantizer" / "_weight_quantizer" doing exactly that, so torch.onnx
(opset 13) emits what pytorch-quantization emits: /conv1/_input_quantizer/QuantizeLinear with
Constant scale and zero point, /conv1/_weight_quantizer/QuantizeLinear on the conv1.weight
initializer with an initializer scale and axis=0.

qdq_other_tool.onnx is built by hand, as a tool without module scopes would write it: node names
"QuantizeLinear_0", one scale initializer shared by two activation pairs, and a weight stored as
int8 with only a DequantizeLinear (ONNX Runtime's quantize_static does that).
"""
import os

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as onh
import torch
from torch import nn
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class FakeQuant(nn.Module):
    """pytorch-quantization's TensorQuantizer export path with a fixed amax."""

    def __init__(self, amax, axis=None, unsigned=False):
        super().__init__()
        self.register_buffer("_amax", torch.tensor(amax, dtype=torch.float32))
        self.axis = axis
        self.unsigned = unsigned

    def forward(self, x):
        bound = 255 if self.unsigned else 127
        low = 0 if self.unsigned else -128
        if self.axis is None:
            return torch.fake_quantize_per_tensor_affine(x, float(self._amax) / bound, 0, low,
                                                         bound)
        scale = self._amax / bound
        return torch.fake_quantize_per_channel_affine(
            x, scale, torch.zeros_like(scale, dtype=torch.int32), self.axis, low, bound)


def weight_quantizer(weight):
    amax = weight.detach().abs().flatten(1).amax(dim=1)
    return FakeQuant(amax.tolist(), axis=0)


class QuantConv2d(nn.Conv2d):
    def __init__(self, *args, input_amax, input_unsigned=False, **kwargs):
        super().__init__(*args, **kwargs)
        self._input_quantizer = FakeQuant(input_amax, unsigned=input_unsigned)
        self._weight_quantizer = weight_quantizer(self.weight)

    def forward(self, x):
        return self._conv_forward(self._input_quantizer(x), self._weight_quantizer(self.weight),
                                  self.bias)


class QuantLinear(nn.Linear):
    def __init__(self, *args, input_amax, **kwargs):
        super().__init__(*args, **kwargs)
        self._input_quantizer = FakeQuant(input_amax)
        self._weight_quantizer = weight_quantizer(self.weight)

    def forward(self, x):
        return F.linear(self._input_quantizer(x), self._weight_quantizer(self.weight), self.bias)


class PqNet(nn.Module):
    """conv1 (signed input), conv2 (unsigned input after ReLU), fc (Gemm)."""

    def __init__(self):
        super().__init__()
        self.conv1 = QuantConv2d(1, 4, 3, input_amax=2.5)
        self.conv2 = QuantConv2d(4, 3, 3, input_amax=1.5, input_unsigned=True)
        self.fc = QuantLinear(3 * 4 * 4, 2, input_amax=4.0)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


class PqReuse(nn.Module):
    """A nested QuantLinear called twice: the second call's pair is scoped
    "/layer/layer.0/_input_quantizer_1/QuantizeLinear"; both Gemms share one weight pair."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Sequential(QuantLinear(4, 4, input_amax=2.0))

    def forward(self, x):
        return self.layer(torch.relu(self.layer(x)))


def export_pq(name, opset, model=None, shape=(1, 1, 8, 8)):
    torch.manual_seed(0)
    model = (model or PqNet()).eval()
    path = os.path.join(HERE, name)
    torch.onnx.export(model, torch.randn(*shape), path, opset_version=opset,
                      input_names=["input"], output_names=["output"], do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))
    print(f"{name}: {os.path.getsize(path)} bytes")


def other_tool():
    """input -> Q/DQ(act_scale) -> Conv_1 (weight Q/DQ per channel) -> Relu -> Q/DQ(act_scale)
    -> Conv_2 (int8 weight, DequantizeLinear only) -> output."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b1 = rng.standard_normal(4).astype(np.float32)
    w1_scale = (np.abs(w1).reshape(4, -1).max(axis=1) / 127).astype(np.float32)
    w2 = rng.integers(-127, 128, (3, 4, 1, 1)).astype(np.int8)
    w2_scale = np.full(3, 0.01, np.float32)
    act_scale = np.array(0.05, np.float32)
    zp = np.array(0, np.int8)

    def qdq(index, tensor, scale, zero, out, **axis):
        return [oh.make_node("QuantizeLinear", [tensor, scale, zero], [f"q{index}"],
                             name=f"QuantizeLinear_{index}", **axis),
                oh.make_node("DequantizeLinear", [f"q{index}", scale, zero], [out],
                             name=f"DequantizeLinear_{index}", **axis)]

    nodes = (qdq(0, "input", "act_scale", "act_zp", "x_dq")
             + qdq(1, "conv1.weight", "w1_scale", "w1_zp", "w1_dq", axis=0)
             + [oh.make_node("Conv", ["x_dq", "w1_dq", "conv1.bias"], ["c1"], name="Conv_1"),
                oh.make_node("Relu", ["c1"], ["r1"], name="Relu_1")]
             + qdq(2, "r1", "act_scale", "act_zp", "r1_dq")
             + [oh.make_node("DequantizeLinear", ["conv2.weight", "w2_scale", "w2_zp"], ["w2_dq"],
                             name="DequantizeLinear_3", axis=0),
                oh.make_node("Conv", ["r1_dq", "w2_dq"], ["output"], name="Conv_2")])
    graph = oh.make_graph(
        nodes, "other_tool",
        [oh.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 2, 5, 5])],
        [oh.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, 3, 3, 3])],
        [onh.from_array(w1, "conv1.weight"), onh.from_array(b1, "conv1.bias"),
         onh.from_array(w1_scale, "w1_scale"), onh.from_array(np.zeros(4, np.int8), "w1_zp"),
         onh.from_array(act_scale, "act_scale"), onh.from_array(zp, "act_zp"),
         onh.from_array(w2, "conv2.weight"), onh.from_array(w2_scale, "w2_scale"),
         onh.from_array(np.zeros(3, np.int8), "w2_zp")])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)],
                          producer_name="make_qdq_models.py")
    model.ir_version = 7
    onnx.checker.check_model(model)
    path = os.path.join(HERE, "qdq_other_tool.onnx")
    onnx.save(model, path)
    print(f"qdq_other_tool.onnx: {os.path.getsize(path)} bytes")


def main():
    export_pq("qdq_pq.onnx", 13)
    export_pq("qdq_pq_opset17.onnx", 17)
    torch.manual_seed(0)
    export_pq("qdq_pq_reuse.onnx", 13, PqReuse(), (2, 4))
    other_tool()


if __name__ == "__main__":
    main()
