"""qcal.torch.calibrate records pooling inputs as "<pool>._input_quantizer" and the shortcut of
each residual add as "<block>.residual_quantizer" (torch.fx or qcal.torch.ResidualQuantizer).

Values are checked exactly: a second model on the server records the tensors computed by hand
under the same names, and both histograms (mergeable layout: the same data gives the same bins)
must be equal, counts, abs_max and totals."""

import warnings

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import qcal
import qcal.torch
from qcal.torch import ResidualQuantizer, ResidualTraceWarning


def images(seed, batch=2, size=64):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def reference(client, session, tensors):
    """A model beside `session` holding the hand-computed tensors, {name: [tensor per batch]}."""
    ref = client.model(f"{session.name}-ref")
    for name, batches in tensors.items():
        for tensor in batches:
            ref.record(name, tensor)
    ref.flush()
    return ref


def assert_same_histograms(session, ref, names):
    for name in names:
        got, want = session.histogram(name), ref.histogram(name)
        assert got["abs_max"] == want["abs_max"], name
        assert got["total"] == want["total"], name
        assert np.array_equal(got["counts"], want["counts"]), name


def resnet_by_hand(net, x):
    """{name: tensor} of the pools' inputs and every block's shortcut, computed without hooks:
    the identity is the block's input, or downsample(input) (torchvision's BasicBlock and
    Bottleneck forward)."""
    seen = {}
    x = net.relu(net.bn1(net.conv1(x)))
    seen["maxpool._input_quantizer"] = x
    x = net.maxpool(x)
    for layer in ("layer1", "layer2", "layer3", "layer4"):
        for index, block in enumerate(getattr(net, layer)):
            identity = x if block.downsample is None else block.downsample(x)
            seen[f"{layer}.{index}.residual_quantizer"] = identity
            x = block(x)
    seen["avgpool._input_quantizer"] = x
    return seen


def conv_and_linear_names(net):
    return {f"{path}._input_quantizer" for path, m in net.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))}


@pytest.mark.parametrize("arch, blocks", [("resnet18", (2, 2, 2, 2)), ("resnet50", (3, 4, 6, 3))])
def test_torchvision_resnet_shortcuts_and_pools(client, session, arch, blocks):
    net = getattr(torchvision.models, arch)().eval()
    residual = [f"layer{i + 1}.{j}.residual_quantizer" for i, n in enumerate(blocks)
                for j in range(n)]
    pools = ["maxpool._input_quantizer", "avgpool._input_quantizer"]
    names = qcal.torch.quantizer_names(net)
    assert [n for n in names.values() if "residual" in n] == residual
    assert set(names.values()) == conv_and_linear_names(net) | set(residual) | set(pools)
    assert all(names[n] == n for n in residual)  # the quantizer is the (virtual) module
    assert names["maxpool"] == "maxpool._input_quantizer"

    batches = [images(1), images(2)]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error", ResidualTraceWarning)  # every block traces
        with qcal.torch.calibrate(net, session):
            for x in batches:
                net(x)
        by_hand = [resnet_by_hand(net, x) for x in batches]
    info = session.info()["quantizers"]
    assert set(info) == set(names.values())
    for name in residual + pools:
        assert info[name]["batches"] == 2, name
    ref = reference(client, session, {n: [b[n] for b in by_hand] for n in residual + pools})
    assert_same_histograms(session, ref, residual + pools)


def test_aggregate_counts_the_new_quantizers_too(client, session):
    net = torchvision.models.resnet18().eval()
    x = images(3)
    with torch.no_grad():
        with qcal.torch.calibrate(net, session, aggregate=True):
            net(x)
        by_hand = resnet_by_hand(net, x)
    names = [n for n in by_hand]
    ref = reference(client, session, {n: [by_hand[n]] for n in names})
    assert_same_histograms(session, ref, names)


class IdentityFirst(nn.Module):
    """A user's block: the shortcut on the left (`identity + out`), a projection child named
    otherwise than `downsample`, and a second block nested as a child."""

    def __init__(self, channels=4, out_channels=6):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, out_channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.project = nn.Conv2d(channels, out_channels, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        identity = self.project(x)
        return self.pool(torch.relu(identity + self.body(x)))


class Explicit(nn.Module):
    """pytorch-quantization's resnet.py pattern with qcal's placeholder quantizer."""

    def __init__(self, channels=6):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.residual_quantizer = ResidualQuantizer()

    def forward(self, x):
        out = self.conv(x)
        out += self.residual_quantizer(x)
        return out


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = IdentityFirst()
        self.second = Explicit()
        self.head = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.second(self.first(x))
        return torch.add(x, self.head(x))  # broadcast add of a pooled branch: residual at root


CUSTOM_RESIDUAL = ["residual_quantizer", "first.residual_quantizer", "second.residual_quantizer"]


def custom_by_hand(net, x):
    first = net.first(x)
    second = net.second(first)
    return {
        "first.residual_quantizer": net.first.project(x),
        "first.pool._input_quantizer": torch.relu(net.first.project(x) + net.first.body(x)),
        "second.residual_quantizer": first,
        "head._input_quantizer": second,
        "residual_quantizer": second,
    }


def test_custom_blocks_identity_first_explicit_and_root(client, session):
    net = Custom().eval()
    names = qcal.torch.quantizer_names(net)
    assert names == {
        "residual_quantizer": "residual_quantizer",
        "first.body.0": "first.body.0._input_quantizer",
        "first.body.2": "first.body.2._input_quantizer",
        "first.project": "first.project._input_quantizer",
        "first.pool": "first.pool._input_quantizer",
        "first.residual_quantizer": "first.residual_quantizer",
        "second.conv": "second.conv._input_quantizer",
        "second.residual_quantizer": "second.residual_quantizer",
        "head": "head._input_quantizer",
    }
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        with qcal.torch.calibrate(net, session):
            net(x)
        by_hand = custom_by_hand(net, x)
    info = session.info()["quantizers"]
    assert set(info) == set(names.values())
    for name in CUSTOM_RESIDUAL:
        assert info[name]["batches"] == 1, name  # the explicit block is recorded once, not twice
    ref = reference(client, session, {n: [t] for n, t in by_hand.items()})
    assert_same_histograms(session, ref, list(by_hand))


def test_residual_false_and_explicit(session):
    net = Custom().eval()
    plain = qcal.torch.quantizer_names(net, residual=False)
    assert not [n for n in plain.values() if "residual" in n]
    explicit = qcal.torch.quantizer_names(net, residual="explicit")
    assert set(explicit.values()) - set(plain.values()) == {"second.residual_quantizer"}
    with torch.no_grad(), qcal.torch.calibrate(net, session, residual=False):
        net(torch.randn(1, 4, 8, 8))
    assert set(session.info()["quantizers"]) == set(plain.values())
    with pytest.raises(TypeError, match=r"residual must be a bool or \"explicit\", got int"):
        qcal.torch.quantizer_names(net, residual=1)
    with pytest.raises(qcal.QcalError) as error:
        with qcal.torch.calibrate(net, session, residual="auto"):
            pass
    assert error.value.code == "INVALID_ARGUMENT"
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in net.modules())


class Pools(nn.Module):
    def __init__(self):
        super().__init__()
        self.p1 = nn.ModuleList([nn.MaxPool1d(2), nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(1)])
        self.p2 = nn.ModuleList([nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)])
        self.p3 = nn.ModuleList([nn.MaxPool3d(2), nn.AvgPool3d(2), nn.AdaptiveAvgPool3d(1)])

    def forward(self, a, b, c):
        return [[p(t) for p in pools] for pools, t in ((self.p1, a), (self.p2, b), (self.p3, c))]


def test_pools_1d_2d_3d(client, session):
    net = Pools()
    g = torch.Generator().manual_seed(5)
    a, b, c = (torch.randn(*shape, generator=g) for shape in ((2, 3, 8), (2, 3, 4, 4),
                                                              (1, 2, 4, 4, 4)))
    expected = {f"p{d}.{i}._input_quantizer": t for d, t in ((1, a), (2, b), (3, c))
                for i in range(3)}
    assert set(qcal.torch.quantizer_names(net).values()) == set(expected)
    with qcal.torch.calibrate(net, session):
        net(a, b, c)
    assert set(session.info()["quantizers"]) == set(expected)
    ref = reference(client, session, {n: [t] for n, t in expected.items()})
    assert_same_histograms(session, ref, list(expected))


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent: torch.fx cannot trace it
            return x + self.conv(x)
        return x


def test_untraceable_blocks_warn_once_and_are_skipped(session):
    net = nn.Sequential(Untraceable(), Untraceable())
    with pytest.warns(ResidualTraceWarning) as caught:
        names = qcal.torch.quantizer_names(net)
    assert len(caught) == 1
    assert "torch.fx could not trace 0, 1" in str(caught[0].message)
    assert set(names.values()) == {"0.conv._input_quantizer", "1.conv._input_quantizer"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "explicit" traces nothing, so warns nothing
        assert qcal.torch.quantizer_names(net, residual="explicit") == names


class TwoAdds(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 2, 3, padding=1)
        self.b = nn.Conv2d(2, 2, 3, padding=1)
        self.mix = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        y = self.mix(x + self.a(x))  # shortcut: the block's input
        return y + self.b(y)  # shortcut: mix's output (a forward hook on mix)


class FunctionShortcut(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        s = torch.relu(x)  # no module boundary carries s
        return s + self.conv(s)


def test_two_adds_in_one_block_are_numbered(client, session):
    net = nn.Sequential(TwoAdds())
    names = qcal.torch.quantizer_names(net)
    assert [n for n in names.values() if "residual" in n] == ["0.residual_quantizer",
                                                               "0.residual_quantizer_1"]
    x = torch.randn(2, 2, 6, 6, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        with qcal.torch.calibrate(net, session):
            net(x)
        block = net[0]
        by_hand = {"0.residual_quantizer": x, "0.residual_quantizer_1": block.mix(x + block.a(x))}
    ref = reference(client, session, {n: [t] for n, t in by_hand.items()})
    assert_same_histograms(session, ref, list(by_hand))


def test_a_shortcut_without_module_boundary_is_reported():
    net = nn.Sequential(FunctionShortcut())
    with pytest.warns(ResidualTraceWarning, match=r"no module boundary carries the shortcut of "
                                                  r"0 \(add\)"):
        names = qcal.torch.quantizer_names(net)
    assert set(names.values()) == {"0.conv._input_quantizer"}


def test_residual_quantizer_leaves_no_onnx_node():
    import io

    import onnx

    buffer = io.BytesIO()
    torch.onnx.export(Explicit().eval(), torch.randn(1, 6, 4, 4), buffer, opset_version=13)
    model = onnx.load_from_string(buffer.getvalue())
    assert [n.op_type for n in model.graph.node] == ["Conv", "Add"]
