"""The runtime stage of docker/Dockerfile.cpu installs every Debian package whose libraries the
built qcal-server and qcal load: ldd of the binaries of QCAL_BUILD_DIR, each library mapped to
its package by dpkg -S, must be covered by the stage's apt-get install list or by the
dependencies of what it lists (dpkg's Depends, followed through). libc6, libgcc-s1 and
libstdc++6 are in every Debian base. A library that no package owns must be the project's own,
installed by the build stage. Also checks docker/runtime-packages.sh, which Dockerfile.cuda
uses to write its list, against the same mapping."""

import os
import re
import subprocess

import pytest

from dockerfile_parse import DOCKER_DIR, apt_installs, installed_files, parse

IN_EVERY_BASE = {"libc6", "libgcc-s1", "libstdc++6"}


def _libraries(binaries):
    """The paths ldd resolves for the binaries."""
    out = subprocess.run(["ldd", *map(str, binaries)], capture_output=True, text=True, check=True)
    assert "not found" not in out.stdout, out.stdout
    return sorted(set(re.findall(r"=> (/\S+)", out.stdout)))


def _owners(libraries):
    """{library: package or None}. One dpkg -S for all names: ldd's /lib/... is recorded by
    dpkg as /usr/lib/... on a merged /usr, and a symlink sometimes only under its target."""
    names = {lib: [lib, "/usr" + lib, os.path.realpath(lib)] for lib in libraries}
    out = subprocess.run(["dpkg", "-S", *{n for ns in names.values() for n in ns}],
                         capture_output=True, text=True).stdout
    owner_of = {}
    for line in out.splitlines():
        packages, _, path = line.partition(": ")
        owner_of.setdefault(path, packages.split(", ")[0].split(":")[0])
    return {lib: next((owner_of[n] for n in ns if n in owner_of), None)
            for lib, ns in names.items()}


def _depends_closure(packages):
    """The packages and all they depend on, per the installed packages' Depends and Pre-Depends
    (every alternative of an `a | b` counts)."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Depends}, ${Pre-Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    depends = {}
    for line in out.splitlines():
        name, _, deps = line.partition("\t")
        depends[name] = {re.sub(r"[\s(:].*", "", d.strip()) for d in re.split(r"[,|]", deps)} - {""}
    closure, todo = set(), list(packages)
    while todo:
        package = todo.pop()
        if package not in closure:
            closure.add(package)
            todo += depends.get(package, ())
    return closure


@pytest.fixture(scope="module")
def stages():
    return parse(DOCKER_DIR / "Dockerfile.cpu")


@pytest.fixture(scope="module")
def owners(server_bin, cli_bin):
    return _owners(_libraries([server_bin, cli_bin]))


def test_runtime_stage_has_no_dev_packages(stages):
    runtime, build = apt_installs(stages[-1]), apt_installs(stages[0])
    assert runtime and build
    assert not [p for p in runtime if p.endswith("-dev")], runtime
    assert [p for p in build if p.endswith("-dev")], build


def test_runtime_packages_cover_what_the_binaries_load(stages, owners):
    listed = apt_installs(stages[-1])
    covered = _depends_closure(listed) | IN_EVERY_BASE
    needed = {package for package in owners.values() if package}
    assert len(needed) >= 10, needed  # gRPC, protobuf, Abseil, ... were found at all
    missing = sorted(needed - covered)
    assert not missing, (
        f"Dockerfile.cpu's runtime stage lacks {missing}: add them to its apt-get install "
        f"(it installs {listed})")


def test_libraries_no_package_owns_are_installed_by_the_build_stage(stages, owners):
    unowned = {lib for lib, package in owners.items() if package is None}
    installed = {source.rsplit("/", 1)[-1] for source, _ in installed_files(stages[0]) if source}
    assert {lib.rsplit("/", 1)[-1] for lib in unowned} <= installed, (unowned, installed)


def test_runtime_packages_script_agrees(server_bin, cli_bin, owners):
    script = DOCKER_DIR / "runtime-packages.sh"
    result = subprocess.run([str(script), str(server_bin), str(cli_bin)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {p for p in owners.values() if p}
    for lib in (lib for lib, package in owners.items() if package is None):
        assert f"no package owns {lib}" in result.stderr
