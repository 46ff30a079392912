"""Toolchain families as plug-ins (issue 18, item 2), without the engine: a family registered by a
test (tests/fake_family.py) and its TOML file are picked, define the builder image, the shims and
the environment of a build, and nothing in the images or the build's steps names a family. The same
family builds a real project in tests/integration/test_families.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import xbuild
from tests import fake_family
from tests.helpers import hello_files, make_project
from xbuild import toolchain
from xbuild.board import targets
from xbuild.containers import images
from xbuild.errors import ConfigError
from xbuild.pipeline import cache
from xbuild.pipeline import spec as specs
from xbuild.request import BuildRequest, Mode
from xbuild.toolchain import registry


@pytest.fixture
def fake(monkeypatch, tmp_path):
    with fake_family.registered(monkeypatch, tmp_path / "data"):
        yield


def test_a_registered_family_reads_its_toml_file_and_takes_what_it_claims(fake):
    assert toolchain.all_toolchains()[fake_family.TOOLCHAIN].family == fake_family.NAME
    tc = toolchain.pick(targets.get("rpi3"), Mode.CROSS)
    assert isinstance(tc, fake_family.Fake) and tc.name == fake_family.TOOLCHAIN
    # what it does not claim stays with the built-in families
    assert toolchain.pick(targets.get("rpi0"), Mode.CROSS).name == "zig"
    assert toolchain.pick(targets.get("rpi3"), Mode.EMULATE).name == "gcc-native"
    assert toolchain.pick(targets.get("rpi3"), Mode.CROSS, static=True).name == "zig"
    assert toolchain.pick(targets.get("rpi4"), Mode.CROSS).name == "gcc-cross"


def test_its_builder_image_is_its_own_layer_on_the_builder_it_names(fake):
    rpi3 = targets.get("rpi3")
    defn = images.builder_def(toolchain.pick(rpi3, Mode.CROSS))
    gcc_cross = toolchain.get("gcc-cross", rpi3).builder_image()
    assert defn.tag.startswith("xbuild/builder:trixie-armhf-fake-") and defn.parent == gcc_cross
    assert defn.dockerfile.startswith(f"FROM {gcc_cross.tag}\n") and fake_family.MARK in defn.dockerfile
    # the project's packages go on top of it, multiarch as in any cross builder
    deps = images.builder_def(toolchain.pick(rpi3, Mode.CROSS), ("zlib1g-dev",))
    assert deps.parent == defn and "zlib1g-dev:armhf" in deps.dockerfile


def test_a_spec_resolved_for_it_carries_its_shims_environment_and_cache_key(fake, tmp_path):
    spec = specs.resolve(make_project(tmp_path / "hello", hello_files(1)), BuildRequest("rpi3"))
    tc = spec.toolchain
    assert isinstance(tc, fake_family.Fake) and not tc.needs_binfmt and tc.compiler_cache
    files = tc.files()
    assert fake_family.CALLS in files["bin/arm-linux-gnueabihf-gcc"]
    assert fake_family.CALLS not in files["bin/ar"]  # only the compilers log
    assert "toolchain.cmake" in files and "cross.ini" in files  # a cross family's files
    assert tc.environment(2)[fake_family.ENV] == "set-by-the-fake-family"
    assert spec.options()["toolchain"]["family"] == fake_family.NAME
    key = cache.key(spec, "source", images.builder_def(tc).tag)
    gcc_cross = toolchain.get("gcc-cross", spec.target)
    assert key != cache.key(spec, "source", images.builder_def(gcc_cross).tag)


def test_once_unregistered_its_toml_file_is_a_config_error_naming_the_families(monkeypatch, tmp_path):
    with fake_family.registered(monkeypatch, tmp_path / "data"):
        pass
    assert toolchain.pick(targets.get("rpi3"), Mode.CROSS).name == "gcc-cross"
    path = tmp_path / "fake-cc.toml"
    path.write_text(fake_family.TOML)
    with pytest.raises(ConfigError, match=r"'family' must be a toolchain family \(gcc, hybrid, zig\)"):
        registry._load(path)


def test_a_family_whose_outputs_no_gate_reads_is_refused_when_it_registers():
    class Wheel(fake_family.Fake):
        outputs = "wheel"
    with pytest.raises(ValueError, match="outputs 'wheel', which no gate reads"):
        registry.register("wheel")(Wheel)
    assert "wheel" not in registry.families()


def test_the_built_in_families_and_what_their_containers_need():
    assert set(registry.families()) == {"gcc", "hybrid", "zig"}
    rpi3 = targets.get("rpi3")
    needs = {mode: toolchain.pick(rpi3, mode).needs_binfmt for mode in Mode}
    assert needs == {"cross": False, "emulate": rpi3.needs_qemu, "hybrid": rpi3.needs_qemu}
    assert all(cls.outputs == "elf" for cls in registry.families().values())


def _names(path: Path) -> set[str]:
    """The identifiers and string constants of a module's code (docstrings and comments aside)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.alias):
            out.update(node.name.split("."))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node.value))
    return out


PACKAGE = Path(xbuild.__file__).parent
# The images and the build's steps; hints.py may name --mode hybrid, a mode a user picks.
BUILD = ["containers/images.py", "pipeline/build.py", "pipeline/context.py", "pipeline/delivery.py"]


@pytest.mark.parametrize("module", BUILD)
def test_images_and_the_pipeline_name_no_family(module):
    families = registry.families()
    named = {*families, *(cls.__name__ for cls in families.values()), *toolchain.all_toolchains()}
    assert not _names(PACKAGE / module) & named
