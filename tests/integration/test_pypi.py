"""project/pypi.py against the real package index (PyPI), with this machine's own pip
configuration: build requirements resolved into wheels whose hashes are PyPI's own, a cache that a
second call fetches nothing into, the errors for a name PyPI lacks and for a project with no wheel
for the platform, and real sdists unpacked into their source trees.

Marked integration: skipped when PyPI cannot be reached, a failure under
XBUILD_REQUIRE_INTEGRATION=1."""

from __future__ import annotations

import hashlib
import os

import pytest

from xbuild.errors import PackageUnavailable
from xbuild.project.pypi import download, fetch_sdist

pytestmark = pytest.mark.integration

# The build machine's tags, as pip lists them for x86_64 and glibc 2.36 (bookworm)
X86 = ([f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)]
       + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"])


@pytest.fixture(scope="module")
def pypi():
    """digests(name) -> {filename: sha256}, as PyPI's project page (PEP 691) publishes them."""
    import requests
    session = requests.Session()
    try:
        session.get("https://pypi.org/simple/pip/", timeout=30).raise_for_status()
    except requests.RequestException as exc:
        if os.environ.get("XBUILD_REQUIRE_INTEGRATION") == "1":
            pytest.fail(f"integration tests required but PyPI is unreachable: {exc}")
        pytest.skip(f"PyPI is unreachable: {exc}")

    def digests(name: str) -> dict[str, str]:
        page = session.get(f"https://pypi.org/simple/{name}/", timeout=60,
                           headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        page.raise_for_status()
        return {f["filename"]: f["hashes"]["sha256"] for f in page.json()["files"]}

    yield digests
    session.close()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_requirements_resolve_into_wheels_with_pypis_hashes_and_are_fetched_once(pypi, tmp_path):
    cache, lines = tmp_path / "wheels", []
    got = download(["setuptools>=61", "wheel", "Cython<3.1"], cache, python="3.11", platforms=X86,
                   log=lines.append)
    by_name = {f.name: f for f in got}
    assert {"setuptools", "wheel", "cython"} <= set(by_name), by_name
    assert by_name["cython"].version.startswith("3.0.") and "cp311-cp311-manylinux" in by_name["cython"].filename
    for f in got:
        assert f.sha256 == sha256(cache / f.filename) == pypi(f.name)[f.filename]
        assert f.size == (cache / f.filename).stat().st_size
    assert sorted(p.name for p in cache.iterdir()) == sorted(f.filename for f in got)

    inodes = {p.name: p.stat().st_ino for p in cache.iterdir()}
    again: list[str] = []
    assert download(["setuptools>=61", "wheel", "Cython<3.1"], cache, python="3.11", platforms=X86,
                    log=again.append) == got
    assert {p.name: p.stat().st_ino for p in cache.iterdir()} == inodes
    assert not [line for line in again if "Downloading" in line or line.startswith("Saved")], again


def test_a_name_pypi_lacks_is_named(pypi, tmp_path):
    with pytest.raises(PackageUnavailable, match="xbuild-no-such-project-7f3e9: the package index has no "
                                                 "project of that name"):
        download(["xbuild-no-such-project-7f3e9"], tmp_path, python="3.11", platforms=X86, log=lambda _: None)


def test_a_project_without_a_wheel_for_the_board_says_what_to_do(pypi, tmp_path):
    """PyYAML publishes no wheel for a Pi Zero (linux_armv6l): only its sdist would do."""
    with pytest.raises(PackageUnavailable, match="pyyaml==6.0.2: the package index has no wheel of it") as e:
        download(["pyyaml==6.0.2"], tmp_path, python="3.11", platforms=["linux_armv6l"], log=lambda _: None)
    assert "pin a version" in (e.value.hint or "")


@pytest.mark.parametrize("spec,filename", [("msgpack==1.1.0", "msgpack-1.1.0.tar.gz"),
                                           ("pyyaml==6.0.2", "pyyaml-6.0.2.tar.gz")])
def test_an_sdist_unpacks_into_its_source_tree_once(pypi, tmp_path, spec, filename):
    name, version = spec.split("==")
    lines: list[str] = []
    got = fetch_sdist(spec, tmp_path / "sdists", lines.append)
    assert (got.name, got.version, got.filename) == (name, version, filename)
    assert got.sha256 == pypi(name)[filename]
    assert got.project.parent == tmp_path / "sdists" / f"{name}-{version}-{got.sha256[:12]}"
    assert (got.project / "setup.py").is_file() and (got.project / "pyproject.toml").is_file()
    assert (got.project / "PKG-INFO").read_text().count(f"Version: {version}\n") == 1
    assert fetch_sdist(spec, tmp_path / "sdists", lines.append) == got
    assert sorted(os.listdir(tmp_path / "sdists")) == [got.project.parent.name]
    assert lines[-1].startswith(f"using {filename}")
