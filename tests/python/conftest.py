"""Fixtures of the Python module tests: the qcal package of a build folder and a real
qcal-server (started with tests/e2e/qcal_server_process.py).

Run through ctest (which sets QCAL_BUILD_DIR), or by hand:
    QCAL_BUILD_DIR=build /usr/bin/python3 -m pytest tests/python
"""

import os
import pathlib
import re
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("QCAL_BUILD_DIR", REPO / "build")).resolve()
PYPROTO = BUILD / "tests" / "e2e" / "pyproto"
sys.path[:0] = [str(BUILD / "python"), str(PYPROTO), str(REPO / "tests" / "e2e")]

from qcal_server_process import QcalServerProcess  # noqa: E402


@pytest.fixture(scope="session")
def server():
    binary = BUILD / "qcal-server"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: build the project first")
    with QcalServerProcess(binary) as process:
        yield process


@pytest.fixture(scope="session")
def client(server):
    import qcal

    return qcal.Client(server.address, timeout=60)


@pytest.fixture
def session(client, request):
    """A fresh model named after the test."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    return client.model(name)
