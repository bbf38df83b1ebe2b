"""Every COPY and ADD of docker/Dockerfile.* takes something that exists: a path of the
repository (the build context is its root), or, with --from, a path that the named stage's own
commands write, from files that a real build produces (the -B folder of the stage's cmake is
checked against QCAL_BUILD_DIR). Building the images is docker/build.sh's, by hand."""

import os
import pathlib

import pytest

from dockerfile_parse import REPO, cmake_build_dir, dockerfiles, installed_files, parse

DOCKERFILES = dockerfiles()
BUILD = pathlib.Path(os.environ.get("QCAL_BUILD_DIR", REPO / "build")).resolve()


def _related(a, b):
    """a and b are the same path, or one lies in the other."""
    a, b = pathlib.PurePosixPath(a), pathlib.PurePosixPath(b)
    return a == b or a in b.parents or b in a.parents


def test_both_images_are_there():
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile.cpu", "Dockerfile.cuda"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_context_sources_exist(dockerfile):
    copies = [c for stage in parse(dockerfile) for c in stage.copies if c.from_stage is None]
    assert copies, f"{dockerfile.name} copies nothing from the repository"
    for copy in copies:
        where = f"{dockerfile.name}:{copy.line}: {copy.instruction}"
        for source in copy.sources:
            # Nothing may download while building: no ADD of an address.
            assert "://" not in source, f"{where} {source}"
            assert not source.startswith("/"), f"{where} {source}: absolute"
            assert list(REPO.glob(source)), f"{where} {source}: not in the repository"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_stage_sources_are_written_by_that_stage(dockerfile):
    stages = parse(dockerfile)
    by_name = {s.name: s for s in stages if s.name}
    copies = [c for stage in stages for c in stage.copies if c.from_stage is not None]
    assert copies, f"{dockerfile.name} has no runtime stage copying from the build stage"
    for copy in copies:
        where = f"{dockerfile.name}:{copy.line}"
        assert copy.from_stage in by_name, f"{where}: no stage {copy.from_stage}"
        written = [target for _, target in installed_files(by_name[copy.from_stage])]
        for source in copy.sources:
            assert any(_related(source, target) for target in written), (
                f"{where}: {source} is not written by stage {copy.from_stage}: {written}")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_installed_build_outputs_are_what_the_build_produces(dockerfile):
    """The build stage installs files from its cmake folder: each must be a real build output,
    at the same place in QCAL_BUILD_DIR (CMakeLists puts the executables at the build root)."""
    build_stage = next(s for s in parse(dockerfile) if cmake_build_dir(s))
    build_dir = pathlib.PurePosixPath(cmake_build_dir(build_stage))
    outputs = [pathlib.PurePosixPath(source) for source, _ in installed_files(build_stage)
               if source and build_dir in pathlib.PurePosixPath(source).parents]
    names = {p.name for p in outputs}
    assert {"qcal-server", "qcal"} <= names, f"{dockerfile.name} installs {sorted(names)}"
    for output in outputs:
        real = BUILD / output.relative_to(build_dir)
        assert real.is_file(), f"{dockerfile.name} installs {output}, but a build has no {real}"
