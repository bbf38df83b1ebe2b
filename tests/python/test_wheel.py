"""The installable client: the wheel built from this build folder's package (by the script the
target qcal_wheel runs) installs into a fresh venv and, with no PYTHONPATH, imports from there
and calibrates against the real qcal-server."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import BUILD, REPO

HERE = pathlib.Path(__file__).resolve().parent
BUILD_WHEEL = REPO / "client" / "python" / "wheel" / "build_wheel.cmake"
# Variables that could point the venv's Python at the build folder's package.
LEAKY = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "QCAL_SERVER")


def project_version():
    text = (REPO / "CMakeLists.txt").read_text()
    return re.search(r"project\(qcal VERSION (\S+)", text).group(1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built as `cmake --build build --target qcal_wheel` builds it."""
    cmake = shutil.which("cmake")
    assert cmake, "cmake is needed to build the wheel"
    tmp_path = tmp_path_factory.mktemp("wheel")
    dist = tmp_path / "dist"
    subprocess.run(
        [
            cmake,
            f"-DQCAL_BUILD_DIR={BUILD}",
            f"-DQCAL_VERSION={project_version()}",
            f"-DQCAL_WHEEL_DIR={dist}",
            f"-DQCAL_STAGE_DIR={tmp_path / 'stage'}",
            f"-DPYTHON={sys.executable}",
            "-P",
            str(BUILD_WHEEL),
        ],
        check=True,
        timeout=120,
    )
    wheels = list(dist.glob("qcal-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_is_tagged_and_holds_the_package(wheel):
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert wheel.name == f"qcal-{project_version()}-{tag}-{tag}-linux_x86_64.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"qcal-{project_version()}.dist-info/METADATA").decode()
    for module in ("__init__", "_aggregate", "_args", "_errors", "_partial", "_tensors", "_version",
                   "torch"):
        assert f"qcal/{module}.py" in names
    assert any(re.fullmatch(r"qcal/_qcal\.cpython-.*\.so", n) for n in names), names
    # The project's own library is bundled; gRPC, protobuf and abseil stay system libraries.
    assert "qcal/libqcal_proto.so" in names
    assert not any("grpc" in n or "protobuf" in n or "absl" in n for n in names), names
    assert re.search(r"^Name: qcal$", metadata, re.M), metadata
    requires = re.findall(r"^Requires-Dist: (.*)$", metadata, re.M)
    assert requires == ["numpy", "torch ; extra == 'torch'"], metadata


def test_wheel_installs_into_a_venv_and_calibrates(wheel, tmp_path, server):
    venv = tmp_path / "venv"
    # --system-site-packages for numpy and torch from apt; --without-pip saves ensurepip's ~7 s:
    # the system's pip, seen through the system site-packages, installs into the venv.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=60,
    )
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-cache-dir",
         "--disable-pip-version-check", str(wheel)],
        check=True,
        env=env,
        timeout=120,
    )
    run = subprocess.run(
        [str(python), str(HERE / "wheel_calibrate.py"), server.address, tmp_path.name],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)

    assert pathlib.Path(found["prefix"]) == venv
    assert found["version"] == project_version()
    assert not any(str(BUILD) in entry for entry in found["path"]), found["path"]
    site = venv / "lib"
    assert len(found["proto_libraries"]) == 1, found["proto_libraries"]
    for loaded in (found["qcal"], found["extension"], *found["proto_libraries"]):
        assert pathlib.Path(loaded).is_relative_to(site), loaded

    x = found["numpy"]["x._input_quantizer"]
    assert (x["amax"], x["batches"], x["elements"]) == (3.25, 2, 5)
    assert found["torch"]["fc._input_quantizer"]["amax"] == 6.5
    assert found["torch"]["fc._weight_quantizer"]["amax"] == [2.0, 4.0]
