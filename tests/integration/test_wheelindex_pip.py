"""The index wheelindex keeps is one pip uses (issue 19, requirement 7): the store's directory served
over HTTP (python -m http.server), pip resolving from it by name, reading the PEP 658 metadata
file, checking the #sha256 hash; and the board's own pip, in the board's userland under qemu,
installing from it as `--index-url`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import bridge_gateway, run_script, serve
from tests.wheelmaker import make_wheel
from xbuild.artifact import wheeltags
from xbuild.board import targets
from xbuild.containers import images
from xbuild.store import open_store, wheelindex

pytestmark = pytest.mark.integration

BASE = "wheels/rpi3-trixie"
RPI3 = targets.get("rpi3").with_os("trixie")
PROBE = {"tagprobe/__init__.py": "OK = 'imported from the index'\n"}


@pytest.fixture
def index(tmp_path):
    """A store with an index for rpi3 on trixie: tagprobe 1.0 and 2.0, and another project."""
    store = open_store((tmp_path / "store").as_uri())
    tags = str(wheeltags.for_board(RPI3))
    wheels = {}
    for version in ("1.0", "2.0"):
        wheels[version] = make_wheel(tmp_path / version, "tagprobe", version, tags, PROBE,
                                     metadata_extra="Requires-Python: >=3.8\n")
        wheelindex.add(store, BASE, wheels[version])
    wheelindex.add(store, BASE, make_wheel(tmp_path / "other", "other", "1", tags))
    return tmp_path / "store", wheels


def host_pip(url: str, dest: Path, platform: str) -> subprocess.CompletedProcess:
    """The host's pip fetching for the board: no configuration of this machine's (--isolated)."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--only-binary", ":all:",
         "--platform", platform, "--python-version", RPI3.selected.python, "--implementation", "cp",
         "--abi", f"cp{RPI3.selected.python.replace('.', '')}", "--index-url", f"{url}/{BASE}/simple/",
         "--dest", str(dest), "tagprobe"], capture_output=True, text=True, timeout=300)


def test_pip_downloads_the_newest_wheel_by_name_through_its_metadata_file(index, tmp_path):
    root, wheels = index
    with serve(root) as (url, log):
        result = host_pip(url, tmp_path / "got", wheeltags.platform_tags(RPI3)[0])
    assert result.returncode == 0, result.stdout + result.stderr
    [got] = (tmp_path / "got").iterdir()
    assert got.name == wheels["2.0"].name and got.read_bytes() == wheels["2.0"].read_bytes()
    # pip resolved through the PEP 658 metadata file (and checked it against the page's hash)
    assert f"GET /{BASE}/simple/tagprobe/{wheels['2.0'].name}.metadata " in log[0]
    assert f"GET /{BASE}/simple/tagprobe/ " in log[0]


def test_pip_finds_nothing_for_another_platform(index, tmp_path):
    root, _ = index
    with serve(root) as (url, _log):
        result = host_pip(url, tmp_path / "got", "linux_armv6l")
    assert result.returncode != 0
    assert "No matching distribution found for tagprobe" in result.stderr


def test_pip_refuses_a_wheel_changed_after_it_was_indexed(index, tmp_path):
    root, wheels = index
    stored = root / BASE / "simple" / "tagprobe" / wheels["2.0"].name
    stored.write_bytes(stored.read_bytes() + b"\0")
    with serve(root) as (url, _log):
        result = host_pip(url, tmp_path / "got", wheeltags.platform_tags(RPI3)[0])
    assert result.returncode != 0
    assert "DO NOT MATCH THE HASHES" in result.stderr


def test_the_boards_pip_installs_from_the_index(engine, index):
    """rpi3's trixie userland (its python3-pip 25.1.1) under qemu on the default bridge, the index
    served on the bridge's gateway address only (plain HTTP: --trusted-host, as for any
    index that is not HTTPS)."""
    root, _ = index
    gateway = bridge_gateway()
    image = images.runtime(RPI3, lambda _: None, packages=("python3-pip",))
    with serve(root, gateway) as (url, _log):
        script = (f"python3 -m pip install --index-url {url}/{BASE}/simple/ --trusted-host {gateway} "
                  "--target /tmp/site tagprobe "
                  "&& PYTHONPATH=/tmp/site python3 -c 'import tagprobe; print(tagprobe.OK)'")
        status, out = run_script(image.tag, script, {"QEMU_CPU": "max", "PIP_BREAK_SYSTEM_PACKAGES": "1",
                         "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert status == 0, out
    assert "tagprobe-2.0" in out and out.strip().splitlines()[-1] == "imported from the index"
