"""The bundled examples, built for real boards and run under qemu as the board's CPU."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.helpers import xbuild

pytestmark = pytest.mark.integration

# example, target, mode, program + args, expected line, ELF facts every binary must show
CASES = [
    ("hello-make", "rpi3", "cross", ["bin/hello", "--arch"], "armv7l",
     {"machine": "ARM", "float_abi": "hard", "arm_arch": "v8-A"}),
    # rpi0: Raspberry Pi OS armhf through zig (ARMv6 hard-float); a dynamic program runs on
    # Debian's ARMv7 armhf userland, so not as the arm1176 (test_os_releases.py has the details)
    ("hello-make", "rpi0", "cross", ["bin/hello"], "Hello from xbuild (hello-make)",
     {"machine": "ARM", "float_abi": "hard", "arm_arch": "v6", "arm_thumb_isa": 1}),
    ("hello-make", "arm64", "cross", ["bin/hello", "--arch"], "aarch64",
     {"machine": "AArch64", "bits": 64}),
    ("hello-make", "rpi3", "emulate", ["bin/hello"], "Hello from xbuild (hello-make)",
     {"machine": "ARM", "float_abi": "hard", "arm_arch": "v8-A"}),
    ("cmake-zlib", "rpi3", "cross", ["bin/zdemo"], "roundtrip ok 161 bytes",
     {"machine": "ARM", "float_abi": "hard"}),
    ("autotools-hello", "arm64", "cross", ["bin/ahello"], "Hello from autotools",
     {"machine": "AArch64"}),
    ("handconf", "rpi0", "cross", ["bin/counter"], "counter 3",
     {"machine": "ARM", "float_abi": "hard", "arm_arch": "v6"}),
    # autotools, CMake (with a -dev package: zlib) and Meson through the same shims, with zig
    ("autotools-hello", "rpi0", "cross", ["bin/ahello"], "Hello from autotools",
     {"machine": "ARM", "float_abi": "hard", "arm_arch": "v6", "arm_thumb_isa": 1}),
    ("cmake-zlib", "rpi0", "cross", ["bin/zdemo"], "roundtrip ok 161 bytes",
     {"machine": "ARM", "float_abi": "hard", "arm_arch": "v6", "arm_simd": 0}),
    ("meson-hello", "rpi0", "cross", ["bin/mhello", "--version"], "mhello 1.0",
     {"machine": "ARM", "float_abi": "hard", "arm_arch": "v6"}),
    ("meson-hello", "rpi3", "cross", ["bin/mhello", "--version"], "mhello 1.0",
     {"machine": "ARM", "float_abi": "hard"}),
]


@pytest.mark.parametrize("example,target,mode,command,expected,elf_facts", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_build_and_run(builds, example, target, mode, command, expected, elf_facts):
    result = builds.get(example, target, mode)
    assert result["status"] == "ok" and result["target"] == target and result["mode"] == mode
    (artifact,) = result["artifacts"]
    assert artifact["path"].endswith(f"{example}-{target}.tar.gz")

    manifest = json.loads(Path(result["manifest"]).read_text())
    elves = [f["elf"] for f in manifest["files"] if "elf" in f]
    assert elves, "no ELF file in the artifact"
    for elf in elves:
        for key, value in elf_facts.items():
            assert elf[key] == value, (key, elf)
        # nothing newer than the board's default release ships (trixie: 2.41, bookworm: 2.36)
        floor = manifest["target"]["floors"]["glibc"]
        assert tuple(map(int, elf["glibc"].split("."))) <= tuple(map(int, floor.split(".")))
        if elf["kind"] == "executable":
            assert elf["interpreter"] == manifest["target"]["loader"]
    assert manifest["toolchain"]["cc"] and manifest["source_tree_sha256"]
    assert manifest["image"]["id"].startswith("sha256:")

    run = xbuild("run", "--target", target, artifact["path"], "--", *command)
    assert run.returncode == 0, run.stderr
    assert expected in run.stdout


def test_armv7_code_dies_on_a_pi_zero(builds):
    """The honesty check: Debian armhf (ARMv7) code under the Pi Zero's CPU model is SIGILL.
    On bookworm's userland, that is; trixie's armhf loader already dies with SIGSEGV (139) there."""
    rpi3 = builds.get("hello-make", "rpi3", os="bookworm")["artifacts"][0]["path"]
    run = xbuild("run", "--target", "rpi3", "--os", "bookworm", "--cpu", "arm1176", rpi3,
                 "--", "bin/hello")
    assert run.returncode == 132


def test_exit_code_passes_through(builds):
    rpi0 = builds.get("hello-make", "rpi0")["artifacts"][0]["path"]
    run = xbuild("run", "--target", "rpi0", rpi0, "--", "sh", "-c", "bin/hello >/dev/null; exit 7")
    assert run.returncode == 7


def test_artifact_layout_and_sums(builds):
    result = builds.get("hello-make", "rpi3")
    path = result["artifacts"][0]["path"]
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert "bin/hello" in [m.name for m in members]
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    out = Path(path).parent
    sums = dict(reversed(line.split("  ")) for line in (out / "SHA256SUMS").read_text().splitlines())
    assert sums[out.joinpath(path).name] == result["artifacts"][0]["sha256"]
    assert (out / "build.log").stat().st_size > 0


def test_build_twice_from_clean_is_identical(builds, tmp_path):
    first = builds.get("cmake-zlib", "rpi3")["artifacts"][0]["sha256"]
    proc = xbuild("--target", "rpi3", builds.project("cmake-zlib"), "--out", tmp_path / "again", "--json",
                  "--no-cache")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["cache"] == "miss" and result["artifacts"][0]["sha256"] == first
