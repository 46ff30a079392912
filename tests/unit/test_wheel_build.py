"""A Python project's build without the engine (issue 19): the python recipe is detected, asks
for the release's python3 and libpython-dev in the builder, every recipe kind has its steps, the
cross build's environment aims the build machine's python3 at the board's sysconfig, a release
whose Python this machine lacks is refused before anything runs, and a wheel's members are
unpacked for the gate without leaving the tree."""

from __future__ import annotations

import zipfile

import pytest

from tests.helpers import make_project
from xbuild.artifact import wheelfile
from xbuild.errors import BadArtifact, ConfigError
from xbuild.pipeline import build, wheel
from xbuild.pipeline import spec as specs
from xbuild.pipeline.context import NO_CACHE, BuildContext
from xbuild.pipeline.observer import NullObserver
from xbuild.project import projectmeta, recipes
from xbuild.request import BuildRequest, Mode

PYPROJECT = '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n' \
            '[project]\nname = "spam"\nversion = "2.5"\n'


@pytest.mark.parametrize("files,recipe", [
    ({"pyproject.toml": PYPROJECT, "Makefile": "all:\n"}, "python"),  # the backend drives the build
    ({"setup.py": "from setuptools import setup\nsetup()\n"}, "python"),
    ({"pyproject.toml": "[tool.ruff]\nline-length = 100\n", "Makefile": "all:\n"}, "make"),  # tool config only
])
def test_a_python_project_is_detected_by_its_build_system(tmp_path, files, recipe):
    assert recipes.detect(make_project(tmp_path / "p", files)).name == recipe


def test_the_builder_gets_the_releases_python_and_the_boards_headers(tmp_path):
    project = make_project(tmp_path / "p", {"pyproject.toml": PYPROJECT})
    for release, python in (("trixie", "3.13"), ("bookworm", "3.11"), ("bullseye", "3.9")):
        spec = specs.resolve(project, BuildRequest("rpi3", os=release))
        assert f"libpython{python}-dev" in spec.packages and {"python3", "python3-venv"} <= set(spec.tools)
        assert spec.version == "2.5"  # pyproject.toml's [project] version


def test_every_recipe_kind_has_its_steps():
    assert {r.kind for r in recipes.all_recipes().values()} <= set(recipes.KINDS) == set(build.STEPS)
    assert build.STEPS["wheel"][0] is wheel.requirements  # fetched on the host before anything runs


def _context(tmp_path, target: str, mode: Mode = Mode.CROSS, os: str | None = None) -> BuildContext:
    project = make_project(tmp_path / "p", {"pyproject.toml": PYPROJECT})
    ctx = BuildContext(specs.resolve(project, BuildRequest(target, os=os, mode=mode)), NullObserver(),
                       NO_CACHE, {}, False, False)
    ctx.work = tmp_path / "work"
    return ctx


@pytest.mark.parametrize("target,machine,multiarch", [
    ("rpi3", "armv7l", "arm-linux-gnueabihf"), ("rpi0", "armv6l", "arm-linux-gnueabihf"),
    ("rpi4", "aarch64", "aarch64-linux-gnu")])
def test_the_cross_environment_names_the_boards_platform_and_sysconfig(tmp_path, target, machine, multiarch):
    env = wheel._environment(_context(tmp_path, target), "setuptools.build_meta")
    assert f"_PYTHON_HOST_PLATFORM=linux-{machine}\n" in env
    assert f"_PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata__linux_{multiarch}\n" in env
    assert "--cross-file" not in env and "--cross-file=/xbuild/cross.ini" in wheel._environment(
        _context(tmp_path / "m", target), "mesonpy")


def test_a_release_whose_python_is_not_on_the_mirror_is_refused_first(tmp_path):
    ctx = _context(tmp_path, "jetson-nano")  # L4T R32: Python 3.6, packages from bullseye (3.9)
    with pytest.raises(ConfigError, match=r"Python 3\.6.*Debian bullseye's Python 3\.9"):
        wheel.requirements(ctx)
    assert not ctx.work.exists()  # nothing fetched, nothing written


def test_pyproject_version_is_read_as_data():
    assert projectmeta.pyproject('[project]\nversion = "1.0.3"\n') == "1.0.3"
    assert projectmeta.pyproject('[project]\ndynamic = ["version"]\n') is None
    assert projectmeta.pyproject("[project\n") is None  # broken: the backend reports it


@pytest.mark.parametrize("member", ["../evil.so", "/etc/evil", "a/../../evil"])
def test_unpacking_a_wheel_never_leaves_the_tree(tmp_path, member):
    bad = tmp_path / "x-1.0-cp313-cp313-linux_armv7l.whl"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("x-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
        z.writestr(member, b"\x7fELF")
    dest = tmp_path / "tree"
    dest.mkdir()
    with pytest.raises(BadArtifact, match="leaves the wheel"):
        wheelfile.unpack(bad, dest)
    assert not (tmp_path / "evil.so").exists() and not (tmp_path.parent / "evil").exists()


def test_nightly_builds_sdists_from_the_index_with_their_packages(tmp_path):
    """A piwheels of one's own: nightly.toml names sdists (pypi = ...) for a matrix of boards."""
    from xbuild.service import nightly
    (tmp_path / "nightly.toml").write_text(
        '[[project]]\nname = "pyyaml"\npypi = "pyyaml==6.0.2"\ntargets = ["rpi0", "rpi3"]\n'
        'packages = ["libyaml-dev"]\n')
    (project,) = nightly.load(str(tmp_path / "nightly.toml")).projects
    assert project.pypi == "pyyaml==6.0.2" and project.path is None and project.git is None
    assert [(r.target, r.packages) for r in project.requests] == [("rpi0", ("libyaml-dev",)),
                                                                   ("rpi3", ("libyaml-dev",))]
    (tmp_path / "nightly.toml").write_text(
        '[[project]]\nname = "x"\npypi = "x"\npath = "x"\ntargets = ["rpi3"]\n')
    with pytest.raises(ConfigError, match="only one of them"):
        nightly.load(str(tmp_path / "nightly.toml"))


def test_a_project_that_needs_rust_is_a_clear_error_until_rust_lands(tmp_path):
    project = make_project(tmp_path / "p", {"pyproject.toml": '[build-system]\nrequires = ["maturin>=1.0"]\n'
                                                              'build-backend = "maturin"\n'})
    ctx = BuildContext(specs.resolve(project, BuildRequest("rpi3")), NullObserver(), NO_CACHE, {}, False, False)
    ctx.work = tmp_path / "work"
    with pytest.raises(ConfigError, match="builds Rust code"):
        wheel.requirements(ctx)


@pytest.mark.parametrize("packages,answer", [
    (["libyaml-dev", 3], "must be a list of strings or a string of words, not list"),
    ({"a": 1}, "must be a list of strings or a string of words, not dict"),
    (["libyaml-dev", "bad name!"], "'bad name!' is not a Debian package name"),
])
def test_the_api_takes_packages_as_a_list_or_words_and_nothing_else(monkeypatch, packages, answer):
    """A JSON body's packages is a list of names (a form's, words); anything else is a 422 that
    says so, before any job is made (the git body reaches _request first: jobs is never used)."""
    from xbuild.service.api import create_app
    monkeypatch.setenv("XBUILD_API_TOKENS", "t0ken-for-the-test")
    client = create_app(jobs=object()).test_client()
    resp = client.post("/v1/builds", json={"target": "rpi3", "packages": packages,
                                           "git_url": "https://example.org/a.git"},
                       headers={"Authorization": "Bearer t0ken-for-the-test"})
    assert resp.status_code == 422 and answer in resp.get_json()["error"]
