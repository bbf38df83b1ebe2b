#!/usr/bin/python3
"""Regenerates the small ONNX models the server/onnx tests read.

Run with Debian's interpreter, which has torch 1.13 and onnx 1.12:
    /usr/bin/python3 server/onnx/testdata/make_models.py
Every model is exported by torch.onnx.export in eval mode (opset 13 unless the name says
otherwise) with fixed seeds, so the node and initializer names are exactly what torch.onnx
produces: scopes like /layer1/layer1.0/conv1/Conv, weights like conv1.weight, and
onnx::Conv_NN where BatchNorm was folded into a conv. The .onnx files are committed so the
tests need no torch.
"""
import os

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as onh
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


def randomize_bn(module):
    """Gives every BatchNorm non-trivial statistics so folding really changes the weights."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n) * 0.1)
            m.running_var.copy_(torch.rand(n) + 0.5)
            m.weight.data.copy_(torch.rand(n) + 0.5)
            m.bias.data.copy_(torch.randn(n) * 0.1)


class CnnBn(nn.Module):
    """Conv+BN+ReLU twice (folded into onnx::Conv_NN), a plain conv, two Linear (Gemm)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.conv3 = nn.Conv2d(6, 6, 1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(6 * 2 * 2, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = torch.relu(self.conv3(x))
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + skip)


class ResNetish(nn.Module):
    """ResNet-like nesting: layer1.0.conv1, layer1.1.downsample.0, classifier.1 (Gemm)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(BasicBlock(4, 4, 1), BasicBlock(4, 8, 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(8, 5))

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


class Linear3d(nn.Module):
    """Linear on a 3-D input: MatMul with an [in, out] weight, plus Add for the bias."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.proj = nn.Linear(4, 3, bias=False)

    def forward(self, x):
        return self.proj(torch.relu(self.fc(x)))


class Deconv(nn.Module):
    """ConvTranspose2d with 4 input and 3 output channels: weight [4, 3, 2, 2]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 3, 2, stride=2)

    def forward(self, x):
        return self.up(torch.relu(self.conv1(x)))


class DeadChannel(nn.Module):
    """A conv whose output channel 1 is all zero (weight and bias), as after pruning."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        with torch.no_grad():
            self.conv.weight[1].zero_()
            self.conv.bias[1] = 0.0

    def forward(self, x):
        return self.conv(x)


class Reuse(nn.Module):
    """fc called twice: torch.onnx scopes the second call "/fc_1/Gemm" and reuses fc.weight."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.fc(torch.relu(self.fc(x)))))


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return torch.relu(self.conv1(x))


def export(model, shape, name, opset=13):
    torch.manual_seed(1)
    x = torch.randn(*shape)
    model.eval()
    path = os.path.join(HERE, name)
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"],
                      output_names=["output"], do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))
    print(f"{name}: {os.path.getsize(path)} bytes")


def gemm_transb0():
    """Hand-built (torch never emits it): Gemm with transB=0, weight fc.weight laid out [in, out]."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    graph = oh.make_graph(
        [oh.make_node("Gemm", ["input", "fc.weight", "fc.bias"], ["output"], name="/fc/Gemm",
                      alpha=1.0, beta=1.0, transB=0)],
        "gemm_transb0",
        [oh.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [2, 6])],
        [oh.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [2, 4])],
        [onh.from_array(w, "fc.weight"), onh.from_array(b, "fc.bias")])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)],
                          producer_name="make_models.py")
    model.ir_version = 7
    onnx.checker.check_model(model)
    path = os.path.join(HERE, "gemm_transb0.onnx")
    onnx.save(model, path)
    print(f"gemm_transb0.onnx: {os.path.getsize(path)} bytes")


def main():
    torch.manual_seed(0)
    cnn = CnnBn()
    randomize_bn(cnn)
    export(cnn, (1, 1, 8, 8), "cnn_bn.onnx")

    torch.manual_seed(0)
    resnet = ResNetish()
    randomize_bn(resnet)
    export(resnet, (1, 3, 8, 8), "resnet_block.onnx")

    torch.manual_seed(0)
    export(Linear3d(), (2, 5, 6), "linear3d.onnx")

    torch.manual_seed(0)
    export(Deconv(), (1, 2, 4, 4), "deconv.onnx")

    torch.manual_seed(0)
    export(DeadChannel(), (1, 2, 5, 5), "dead_channel.onnx")

    torch.manual_seed(0)
    export(Reuse(), (2, 4), "reuse.onnx")

    torch.manual_seed(0)
    export(Small(), (1, 1, 5, 5), "opset11.onnx", opset=11)

    gemm_transb0()


if __name__ == "__main__":
    main()
