"""Run by test_wheel.py with the python of a fresh venv that has the qcal wheel installed, and no
PYTHONPATH: calibrates against the qcal-server at argv[1] and prints what it found as JSON (where
qcal and its libraries were loaded from, and the amax values of known data)."""

import json
import sys

import numpy as np
import torch
from torch import nn

import qcal
import qcal.torch
from qcal import _qcal


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.fc(x)


def loaded_libraries(fragment):
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if fragment in line})


def main(address, tag):
    client = qcal.Client(address, timeout=60)

    session = client.model(f"wheel-numpy-{tag}")
    session.record("x._input_quantizer", np.array([0.5, -3.25, 1.0], dtype=np.float32))
    session.record("x._input_quantizer", np.array([2.75, -0.125], dtype=np.float32))
    numpy_table = session.compute_amax(method="max")

    net = Tiny()
    with torch.no_grad():
        net.fc.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.25], [-4.0, 1.0, 1.0, 1.0]]))
    torch_session = client.model(f"wheel-torch-{tag}")
    with torch.no_grad(), qcal.torch.calibrate(net, torch_session, weights=True):
        net(torch.tensor([[1.0, -6.5, 2.0, 0.0]]))
        net(torch.tensor([[0.5, 0.5, 3.0, -1.0]]))
    torch_table = torch_session.compute_amax(method="max")

    json.dump(
        {
            "prefix": sys.prefix,
            "path": sys.path,
            "qcal": qcal.__file__,
            "version": qcal.__version__,
            "extension": _qcal.__file__,
            "proto_libraries": loaded_libraries("libqcal_proto"),
            "numpy": numpy_table["quantizers"],
            "torch": torch_table["quantizers"],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
