"""Fixtures of the end-to-end suite: the real qcal-server and qcal CLI of a build folder.

Run through ctest (which sets QCAL_BUILD_DIR), or by hand:
    QCAL_BUILD_DIR=build /usr/bin/python3 -m pytest tests/e2e
The build folder must hold qcal-server, qcal, python/qcal (the module) and
tests/e2e/pyproto (Python stubs of calibration.proto for the raw-wire tests).
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("QCAL_BUILD_DIR", REPO / "build")).resolve()
sys.path[:0] = [
    str(BUILD / "python"),
    str(BUILD / "tests" / "e2e" / "pyproto"),
    str(REPO / "tests" / "e2e"),
]

from qcal_server_process import QcalServerProcess  # noqa: E402

# Small, so an over-size batch is cheap to send.
MAX_BATCH_BYTES = 1 << 20


def _require(path):
    if not path.exists():
        raise RuntimeError(f"{path} is missing: build the project first (QCAL_BUILD_DIR={BUILD})")
    return path


@pytest.fixture(scope="session")
def server_bin():
    return _require(BUILD / "qcal-server")


@pytest.fixture(scope="session")
def cli_bin():
    return _require(BUILD / "qcal")


@pytest.fixture(scope="module")
def server(server_bin):
    with QcalServerProcess(server_bin, "--max-batch-bytes", str(MAX_BATCH_BYTES)) as process:
        yield process


class Cli:
    """Runs `qcal --server ADDR ...`; returns the CompletedProcess (text)."""

    def __init__(self, binary, address):
        self.binary = binary
        self.address = address

    def __call__(self, *args):
        env = {k: v for k, v in os.environ.items() if k != "QCAL_SERVER"}
        return subprocess.run(
            [str(self.binary), "--server", self.address, *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def ok(self, *args):
        result = self(*args)
        assert result.returncode == 0, f"qcal {args}: {result.stderr}"
        return result.stdout

    def json(self, *args):
        return json.loads(self.ok(*args))

    def fails(self, *args, code, message):
        """Asserts exit status 1 (a failed call) with `error: CODE: ...message...` on stderr."""
        result = self(*args)
        assert result.returncode == 1, f"qcal {args}: exit {result.returncode}: {result.stderr}"
        assert re.search(rf"^error: {code}: .*{re.escape(message)}", result.stderr, re.M), (
            f"qcal {args}: expected {code} with {message!r}, got {result.stderr!r}"
        )
        return result.stderr

    def local_error(self, *args, message):
        """Asserts exit status 1 with exactly `error: MESSAGE` on stderr: an error about a local
        file, with no gRPC code word (no call failed)."""
        result = self(*args)
        assert result.returncode == 1, f"qcal {args}: exit {result.returncode}: {result.stderr}"
        assert result.stderr == f"error: {message}\n", (
            f"qcal {args}: expected {message!r}, got {result.stderr!r}"
        )
        assert result.stdout == ""
        return result.stderr

    def usage_error(self, *args, message):
        """Asserts exit status 2 with `error: usage: ...message...` and a pointer to --help."""
        result = self(*args)
        assert result.returncode == 2, f"qcal {args}: exit {result.returncode}: {result.stderr}"
        assert result.stderr.startswith("error: usage: "), result.stderr
        assert message in result.stderr.splitlines()[0], (
            f"qcal {args}: expected {message!r}, got {result.stderr!r}"
        )
        assert re.search(r"^\(see 'qcal( \w+)* --help'\)$", result.stderr, re.M), result.stderr
        assert result.stdout == ""
        return result.stderr


@pytest.fixture(scope="module")
def cli(cli_bin, server):
    return Cli(cli_bin, server.address)


@pytest.fixture(scope="module")
def client(server):
    import qcal

    return qcal.Client(server.address, timeout=60)


@pytest.fixture
def model_name(request):
    """A model name unique to the test."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")


def save_npy(directory, name, array):
    path = pathlib.Path(directory) / name
    np.save(path, array)
    return path


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory):
    """A tiny float CNN exported by torch.onnx (eval mode), at opset 13 and at opset 11.

    TinyNet: conv1 (1->4, 3x3, pad 1) - relu - maxpool 2 - flatten - fc (64 -> 3); input
    "input" [N, 1, 8, 8]. Returns {"net": module, 13: path, 11: path}.
    """
    import torch
    from torch import nn

    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(64, 3)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(torch.relu(self.conv1(x))), 1))

    torch.manual_seed(0)
    net = TinyNet().eval()
    directory = tmp_path_factory.mktemp("onnx")
    paths = {"net": net}
    for opset in (13, 11):
        path = directory / f"tiny_opset{opset}.onnx"
        torch.onnx.export(
            net,
            torch.zeros(1, 1, 8, 8),
            str(path),
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
        paths[opset] = path
    return paths
