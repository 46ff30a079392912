"""Building for the OS release a board runs: the release's suite supplies the -dev packages (so the
program needs the release's sonames), `xbuild run` runs it in that release's userland, and the ABI
gate holds every ELF to the release's glibc and libstdc++. Images used: bullseye and bookworm
armhf (cross builder with libssl-dev, runtime with libssl-dev), shared by every test here."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import make_project, xbuild
from xbuild.elf import glibc_tuple

pytestmark = pytest.mark.integration


def _elves(result: dict) -> dict[str, dict]:
    manifest = json.loads(Path(result["manifest"]).read_text())
    return {f["path"]: f["elf"] for f in manifest["files"] if "elf" in f}


@pytest.mark.parametrize("release,soname,version", [
    ("bullseye", "libssl.so.1.1", "OpenSSL 1.1.1"),
    ("bookworm", "libssl.so.3", "OpenSSL 3."),
])
def test_openssl_links_and_runs_with_the_release_sonames(builds, release, soname, version):
    result = builds.get("openssl-version", "rpi3", os=release)
    assert result["status"] == "ok" and result["os"] == release
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["target"]["os"] == release and manifest["options"]["os"] == release
    assert manifest["target"]["floors"]["suite"] == release
    elf = _elves(result)["bin/sslversion"]
    assert soname in elf["needed"] and elf["interpreter"] == "/lib/ld-linux-armhf.so.3"
    assert glibc_tuple(elf["glibc"]) <= glibc_tuple(manifest["target"]["floors"]["glibc"])

    run = xbuild("run", "--target", "rpi3", "--os", release, result["artifacts"][0]["path"],
                 "--", "bin/sslversion")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(version), run.stdout


def test_bullseye_build_needs_nothing_above_glibc_2_31(builds):
    elf = _elves(builds.get("openssl-version", "rpi3", os="bullseye"))["bin/sslversion"]
    assert glibc_tuple(elf["glibc"]) <= (2, 31)


def test_releases_are_separate_builds(builds):
    a = builds.get("openssl-version", "rpi3", os="bullseye")
    b = builds.get("openssl-version", "rpi3", os="bookworm")
    assert a["cache_key"] != b["cache_key"] and a["image"] != b["image"]


def test_run_defaults_to_the_release_the_artifact_was_built_for(builds):
    """Without --os, `xbuild run` reads manifest.json beside the artifact: a bullseye build runs
    in bullseye's userland (on the board's default, trixie, libssl.so.1.1 would be missing)."""
    artifact = builds.get("openssl-version", "rpi3", os="bullseye")["artifacts"][0]["path"]
    run = xbuild("run", "--target", "rpi3", artifact, "--", "bin/sslversion")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("OpenSSL 1.1.1")


def test_cxx_on_bullseye_fits_its_libstdcxx(builds):
    result = builds.get("cxx-hello", "rpi3", os="bullseye")
    elf = _elves(result)["bin/cxx-hello"]
    assert "libstdc++.so.6" in elf["needed"]
    assert elf["glibcxx"] and glibc_tuple(elf["glibcxx"]) <= (3, 4, 28)
    assert elf["cxxabi"] and glibc_tuple(elf["cxxabi"]) <= (1, 3, 12)
    run = xbuild("run", "--target", "rpi3", "--os", "bullseye", result["artifacts"][0]["path"],
                 "--", "bin/cxx-hello", "a", "b")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "cxx-hello: 2 argument(s), half of 5 is 2.5"


def test_vendored_bookworm_binary_refused_in_a_bullseye_build(builds, tmp_path):
    """A prebuilt binary made for bookworm (GCC 12, glibc 2.36), shipped by a project whose
    xbuild.toml says bullseye: the gate refuses it, naming the file and the versions."""
    bookworm = builds.get("cxx-hello", "rpi3", os="bookworm")
    elf = _elves(bookworm)["bin/cxx-hello"]
    assert glibc_tuple(elf["glibcxx"]) > (3, 4, 28)  # floating-point std::to_chars, GCC 11+
    with tarfile.open(bookworm["artifacts"][0]["path"]) as tar:
        binary = tar.extractfile("bin/cxx-hello").read()
    project = make_project(tmp_path / "vendored", {"xbuild.toml": (
        '[build]\nos = "bullseye"\nsteps = ["true"]\nartifacts = ["prebuilt/cxx-hello"]\n')})
    (project / "prebuilt").mkdir()
    (project / "prebuilt" / "cxx-hello").write_bytes(binary)

    r = xbuild("--target", "rpi3", project, "--out", tmp_path / "out")
    assert r.returncode == 10, (r.stdout, r.stderr)
    assert f"needs GLIBCXX_{elf['glibcxx']}, Raspberry Pi OS bullseye ships GLIBCXX_3.4.28" in r.stderr
    assert f"needs GLIBC_{elf['glibc']}, Raspberry Pi OS bullseye ships 2.31" in r.stderr
    assert "cxx-hello" in r.stderr
    assert not (tmp_path / "out").exists()
