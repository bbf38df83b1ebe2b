"""The small CNN that the example trains, calibrates and quantizes.

Three conv blocks (Conv -> BatchNorm -> ReLU), two max pools, two linear layers. The blocks are
submodules on purpose: their convs export as `/block1/conv/Conv` with BN-folded weights named
`onnx::Conv_NN`, the layout real networks (ResNet's `layer1.0.conv1`) give qcal's QDQ export.
Quantizer names follow pytorch-quantization: `block1.conv._input_quantizer`, `fc1._input_quantizer`.
"""

import torch
from torch import nn

# Bump when the architecture changes, so cached checkpoints of the old one are not reused.
ARCH_VERSION = "cnn3-v1"


class ConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        # No conv bias: BatchNorm's shift replaces it (and folds into the exported conv).
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class FashionCNN(nn.Module):
    """Input: float32 [N, 1, 28, 28], normalized (data.normalize). Output: logits [N, 10]."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.block1 = ConvBlock(1, 16)    # 28x28
        self.block2 = ConvBlock(16, 32)   # 14x14
        self.block3 = ConvBlock(32, 64)   # 14x14
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.pool(self.block1(x))
        x = self.pool(self.block3(self.block2(x)))
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))
