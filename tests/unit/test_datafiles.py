"""Where targets/, releases/ and recipes/ are found (a source checkout, an editable install, a wheel,
XBUILD_DATA_DIR), and an installation without them: a clear error (exit 34), never an empty list
of boards or an "unknown target"."""

from __future__ import annotations

import json
import os

import pytest

from tests.unit.test_cli import REPO, assert_user_error, xbuild
from xbuild import datafiles


@pytest.mark.skipif(bool(os.environ.get("XBUILD_DATA_DIR")), reason="XBUILD_DATA_DIR is set")
def test_a_source_checkout_reads_the_top_level_folders():
    assert datafiles.data_dir() == REPO  # this test suite runs from a checkout / editable install
    assert {p.stem for p in datafiles.data_files("targets")} >= {"rpi0", "rpi3", "rpi4"}
    assert {p.stem for p in datafiles.data_files("recipes")} >= {"make", "cmake", "meson"}


def _package(root, *, pyproject: bool, data: bool):
    pkg = root / "xbuild"
    pkg.mkdir(parents=True)
    if pyproject:
        (root / "pyproject.toml").write_text("[project]\nname = 'xbuild'\n")
    if data:
        (pkg / "data" / "targets").mkdir(parents=True)
    return pkg


@pytest.mark.parametrize("pyproject, data, expected", [
    (True, False, "root"),     # a clone, or an editable install of it
    (False, True, "data"),     # a wheel in site-packages: the copy made at build time
    (True, True, "data"),      # a built tree: the copy wins
    (False, False, "data"),    # a broken install: looked for in the package (and reported there)
])
def test_default_dir(tmp_path, monkeypatch, pyproject, data, expected):
    pkg = _package(tmp_path / "site", pyproject=pyproject, data=data)
    monkeypatch.setattr(datafiles, "_PACKAGE", pkg)
    assert datafiles._default_dir() == (pkg.parent if expected == "root" else pkg / "data")


def test_site_packages_targets_of_another_project_are_not_ours(tmp_path, monkeypatch):
    """The parent of an installed package is site-packages: its targets/ belongs to anyone."""
    pkg = _package(tmp_path / "site-packages", pyproject=False, data=False)
    (pkg.parent / "targets").mkdir()
    (pkg.parent / "targets" / "foreign.toml").write_text("x = 1\n")
    monkeypatch.setattr(datafiles, "_PACKAGE", pkg)
    assert datafiles._default_dir() == pkg / "data"


@pytest.mark.parametrize("command", [["targets"], ["targets", "--json"],
                                     ["--target", "rpi3", "{project}"],
                                     ["images", "build", "--target", "rpi3"]])
def test_no_boards_is_an_error_not_an_empty_list(tmp_path, command):
    (tmp_path / "data" / "targets").mkdir(parents=True)
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "Makefile").write_text("all:\n")
    r = xbuild(*[a.format(project=tmp_path / "proj") for a in command],
               env_extra={"XBUILD_DATA_DIR": str(tmp_path / "data")})
    assert_user_error(r, 34)
    assert f"no targets: {tmp_path / 'data' / 'targets'} holds no *.toml file" in r.stderr
    assert "XBUILD_DATA_DIR" in r.stderr  # the hint names what to fix
    assert "unknown target" not in r.stderr


def test_no_recipes_is_an_error_not_no_recipe_detected(tmp_path):
    data = tmp_path / "data"
    (data / "recipes").mkdir(parents=True)
    (data / "targets").mkdir()
    (data / "targets" / "rpi3.toml").write_text((REPO / "targets" / "rpi3.toml").read_text())
    (data / "releases").mkdir()
    for release in (REPO / "releases").glob("*.toml"):
        (data / "releases" / release.name).write_text(release.read_text())
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "Makefile").write_text("all:\n")
    r = xbuild("--target", "rpi3", tmp_path / "proj", env_extra={"XBUILD_DATA_DIR": str(data)})
    assert_user_error(r, 34)
    assert f"no recipes: {data / 'recipes'}" in r.stderr


def test_a_missing_data_dir_is_the_same_error(tmp_path):
    r = xbuild("targets", env_extra={"XBUILD_DATA_DIR": str(tmp_path / "nowhere")})
    assert_user_error(r, 34)


def test_a_broken_install_says_to_reinstall(tmp_path, monkeypatch):
    monkeypatch.delenv("XBUILD_DATA_DIR", raising=False)
    monkeypatch.setattr(datafiles, "_default_dir", lambda: tmp_path / "xbuild" / "data")
    with pytest.raises(datafiles.DataFilesMissing) as exc:
        datafiles.data_files("targets")
    assert exc.value.exit_code == 34 and "reinstall" in exc.value.hint


def test_xbuild_data_dir_overrides_the_installed_boards(tmp_path):
    """A site's own boards: XBUILD_DATA_DIR replaces the installed data, it does not add to it."""
    data = tmp_path / "site"
    for kind in ("targets", "releases", "recipes"):
        (data / kind).mkdir(parents=True)
    for release in (REPO / "releases").glob("*.toml"):  # the board names its OS releases
        (data / "releases" / release.name).write_text(release.read_text())
    (data / "targets" / "labboard.toml").write_text((REPO / "targets" / "rpi3.toml").read_text())
    (data / "recipes" / "make.toml").write_text((REPO / "recipes" / "make.toml").read_text())
    r = xbuild("targets", "--json", env_extra={"XBUILD_DATA_DIR": str(data)})
    assert r.returncode == 0, r.stderr
    assert [t["name"] for t in json.loads(r.stdout)["targets"]] == ["labboard"]
