"""A toolchain family added by a module and a TOML file alone (issue 18, item 2): the test's own
family (tests/fake_family.py), registered here, builds the hello project for rpi3 through the real
pipeline on the real engine, in the image it defines, with its shims and its environment; nothing
in images.py or pipeline.py knows of it."""

from __future__ import annotations

import contextlib
import json
import tarfile

import pytest

from tests import fake_family
from tests.helpers import hello_files, make_project

pytestmark = pytest.mark.integration


def test_a_family_registered_by_a_test_builds_a_project_through_the_pipeline(engine, monkeypatch, tmp_path):
    from docker.errors import APIError

    from xbuild.containers import images
    from xbuild.containers.engine import client
    from xbuild.pipeline import spec as specs
    from xbuild.pipeline.build import run_build
    from xbuild.pipeline.context import NO_CACHE
    from xbuild.request import BuildRequest
    project = make_project(tmp_path / "hello", hello_files(7))
    with fake_family.registered(monkeypatch, tmp_path / "data"):
        spec = specs.resolve(project, BuildRequest("rpi3"), out=tmp_path / "out")
        assert isinstance(spec.toolchain, fake_family.Fake)
        image = images.builder_def(spec.toolchain).tag
        try:
            result = run_build(spec, cache=NO_CACHE, compiler_cache=False)
        finally:  # the test's own image (made in seconds on the gcc-cross builder)
            with contextlib.suppress(APIError):
                client().images.remove(image)

    (artifact,) = result.artifacts
    manifest = json.loads(result.manifest.read_text())
    assert artifact.path.is_file() and manifest["image"]["tag"] == image and "-fake-" in image
    assert manifest["toolchain"]["name"] == fake_family.TOOLCHAIN
    assert manifest["toolchain"]["family"] == fake_family.NAME
    hello = next(f for f in manifest["files"] if f["path"] == "bin/hello")
    assert hello["elf"]["machine"] == "ARM"  # the gate read it: the board's CPU, through the shims

    with tarfile.open(artifact.path) as tar:
        def read(rel: str) -> str:
            member = next(m for m in tar.getmembers() if m.name.endswith(f"{fake_family.OUT}/{rel}"))
            return tar.extractfile(member).read().decode()
        # what its image layer, its shims and its environment left, read after collection (finish)
        assert read("mark").strip() == "made-by-the-fake-layer"
        assert read("env").strip() == "set-by-the-fake-family"
        calls = read("calls").splitlines()
    assert any(c.startswith(("gcc ", "cc ", "arm-linux-gnueabihf-gcc ")) and "hello.c" in c for c in calls)
