"""qcal.torch.calibrate streams each Conv/ConvTranspose/Linear input under pytorch-quantization's
names, with the right element counts, and cleans up after itself."""

import numpy as np
import pytest
import torch
from torch import nn

import qcal
import qcal.torch


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.up = nn.ConvTranspose2d(3, 2, 2, stride=2)

    def forward(self, x):
        return self.up(torch.relu(self.conv(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(1, 2, 3, padding=1)
        self.layer1 = nn.Sequential(Block(), nn.BatchNorm2d(2))
        self.fc = nn.Linear(2 * 8 * 8, 5)

    def forward(self, seq, image):
        s = self.stem(seq)
        y = self.layer1(image + s.mean())
        return self.fc(torch.flatten(y, 1))


EXPECTED = {
    # quantizer -> elements per forward of a batch of 3
    "stem._input_quantizer": 3 * 1 * 10,
    "layer1.0.conv._input_quantizer": 3 * 2 * 4 * 4,
    "layer1.0.up._input_quantizer": 3 * 3 * 4 * 4,
    "fc._input_quantizer": 3 * 2 * 8 * 8,
}


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, 1, 10, generator=g), torch.randn(3, 2, 4, 4, generator=g)


def test_names_and_element_counts(session):
    net = Net()
    with torch.no_grad(), qcal.torch.calibrate(net, session) as yielded:
        assert yielded is session
        for seed in range(2):
            net(*inputs(seed))
    info = session.info()  # calibrate flushed on exit
    assert set(info["quantizers"]) == set(EXPECTED)
    for name, elements in EXPECTED.items():
        assert info["quantizers"][name]["batches"] == 2
        assert info["quantizers"][name]["elements"] == 2 * elements
    assert qcal.torch.quantizer_names(net) == {
        "stem": "stem._input_quantizer",
        "layer1.0.conv": "layer1.0.conv._input_quantizer",
        "layer1.0.up": "layer1.0.up._input_quantizer",
        "fc": "fc._input_quantizer",
    }


def test_recorded_values_are_the_module_inputs(session):
    net = Net()
    seq, image = inputs(7)
    with torch.no_grad(), qcal.torch.calibrate(net, session):
        net(seq, image)
    assert session.histogram("stem._input_quantizer")["abs_max"] == float(seq.abs().max())
    fc_in = torch.flatten(net.layer1(image + net.stem(seq).mean()), 1)
    fc_max = np.float32(fc_in.abs().max().item())
    assert session.histogram("fc._input_quantizer")["abs_max"] == fc_max


def test_hooks_are_removed_on_exit_and_after_an_exception(session):
    net = Net()
    with qcal.torch.calibrate(net, session):
        pass
    assert all(not m._forward_pre_hooks for m in net.modules())
    with pytest.raises(RuntimeError, match="boom"):
        with qcal.torch.calibrate(net, session):
            raise RuntimeError("boom")
    assert all(not m._forward_pre_hooks for m in net.modules())
    with torch.no_grad():
        net(*inputs(1))  # not recorded any more
    assert session.info()["quantizers"] == {}


def test_module_types_can_be_chosen(session):
    net = Net()
    with torch.no_grad(), qcal.torch.calibrate(net, session, modules=(nn.Linear,)):
        net(*inputs(3))
    assert set(session.info()["quantizers"]) == {"fc._input_quantizer"}


def test_weights_are_recorded_once_per_channel(session):
    net = Net()
    with torch.no_grad(), qcal.torch.calibrate(net, session, weights=True):
        net(*inputs(4))
        net(*inputs(5))
    info = session.info()
    assert info["quantizers"]["fc._weight_quantizer"]["batches"] == 1
    assert info["quantizers"]["fc._weight_quantizer"]["axis"] == 0
    table = session.compute_amax(method="max")
    fc_amax = net.fc.weight.detach().abs().amax(dim=1)
    amax = {name: np.float32(q["amax"]) for name, q in table["quantizers"].items()}
    assert np.array_equal(amax["fc._weight_quantizer"], fc_amax.numpy())
    conv_amax = net.stem.weight.detach().abs().amax(dim=(1, 2))
    assert np.array_equal(amax["stem._weight_quantizer"], conv_amax.numpy())


def test_send_errors_raise_at_exit(client):
    session = client.model("calibrate-never-created", create=False)
    net = Net()
    with pytest.raises(qcal.QcalError) as error:
        with torch.no_grad(), qcal.torch.calibrate(net, session):
            net(*inputs(0))
    assert error.value.code == "NOT_FOUND"
