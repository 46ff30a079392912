"""Building for the OS release a board runs: the release's suite supplies the -dev packages (so the
program needs the release's sonames), `xbuild run` runs it in that release's userland, and the ABI
gate holds every ELF to the release's glibc and libstdc++. Images used: bullseye and bookworm
armhf (cross builder with libssl-dev, runtime with libssl-dev), shared by every test here."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.helpers import make_project, xbuild
from xbuild.artifact import depends
from xbuild.board.requirement import glibc_tuple

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
    # The cross image holds the board's libstdc++ as the toolchain's libstdc++6-armhf-cross only:
    # its shlibs name the board's package, which the .deb then depends on.
    manifest = _manifest(result)
    assert "libstdc++6" in depends.packages(manifest["depends"]), manifest["depends"]
    assert manifest["depends_unresolved"] == []
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


# --- zig: the Pi Zero/1 (Raspberry Pi OS armhf, ARMv6), L4T R32, --static ------------------------
# Images: trixie armhf cross builder + its zig layer (one, for rpi0's dynamic and static builds),
# bullseye arm64 cross builder + its zig layer and bullseye arm64 runtime (jetson-nano).

def _manifest(result: dict) -> dict:
    return json.loads(Path(result["manifest"]).read_text())


def test_rpi0_is_raspberry_pi_os_armhf_armv6_built_by_zig(builds):
    result = builds.get("hello-make", "rpi0")
    manifest = _manifest(result)
    assert manifest["toolchain"]["name"] == "zig" and manifest["toolchain"]["version"]
    assert manifest["options"]["toolchain"]["name"] == "zig" and manifest["options"]["static"] is False
    assert manifest["target"]["os_name"] == "Raspberry Pi OS trixie"
    elf = _elves(result)["bin/hello"]
    assert (elf["machine"], elf["float_abi"], elf["arm_arch"]) == ("ARM", "hard", "v6")
    assert elf["arm_thumb_isa"] == 1 and elf["arm_simd"] == 0  # no Thumb-2, no NEON
    assert elf["interpreter"] == "/lib/ld-linux-armhf.so.3" and elf["needed"] == ["libc.so.6"]

    run = xbuild("run", "--target", "rpi0", result["artifacts"][0]["path"], "--", "bin/hello")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "Hello from xbuild (hello-make)"
    assert "dynamic program runs on Debian trixie armhf (ARMv7) under QEMU_CPU=cortex-a7" in run.stderr
    assert "the ABI gate is the proof that its code is ARMv6" in run.stderr


def test_rpi0_dynamic_needs_debians_armv7_userland_which_the_arm1176_cannot_run(builds):
    """Why `xbuild run` says so: forced onto the board's CPU model, Debian armhf's loader dies."""
    artifact = builds.get("hello-make", "rpi0")["artifacts"][0]["path"]
    run = xbuild("run", "--target", "rpi0", "--cpu", "arm1176", artifact, "--", "bin/hello")
    assert run.returncode == 132, (run.stdout, run.stderr)  # SIGILL


def test_rpi0_static_runs_as_the_arm1176_with_nothing_from_the_userland(builds, tmp_path):
    out = tmp_path / "static"
    proc = xbuild("--target", "rpi0", "--static", builds.project("hello-make"), "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    manifest = _manifest(result)
    assert manifest["options"]["static"] is True and manifest["toolchain"]["static"] is True
    assert "arm-linux-musleabihf" in manifest["toolchain"]["description"]
    elf = _elves(result)["bin/hello"]
    assert elf["static"] and elf["interpreter"] is None and elf["needed"] == []
    assert (elf["float_abi"], elf["arm_arch"], elf["arm_thumb_isa"]) == ("hard", "v6", 1)
    # static and dynamic builds differ in the cache key
    assert result["cache_key"] != builds.get("hello-make", "rpi0")["cache_key"]

    run = xbuild("run", "--target", "rpi0", result["artifacts"][0]["path"], "--", "bin/hello", "--arch")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "armv6l" and "note:" not in run.stderr  # QEMU_CPU=arm1176 itself


def test_rpi0_static_by_environment_and_xbuild_toml(builds, tmp_path):
    """XBUILD_STATIC and `static = true` under [target.X] reach the build as --static does."""
    project = make_project(tmp_path / "p", {
        "hello.c": '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n',
        "xbuild.toml": '[build]\nsteps = ["$CC -O2 hello.c -o hello"]\nartifacts = ["hello"]\n'
                       '[target.rpi0]\nstatic = true\n'})
    proc = xbuild("--target", "rpi0", project, "--out", tmp_path / "o1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert _elves(json.loads(proc.stdout))["bin/hello"]["static"] is True
    proc = xbuild("--target", "rpi0", project, "--out", tmp_path / "o2", "--json",
                  env={"XBUILD_STATIC": "0"})
    assert proc.returncode == 0, proc.stderr
    assert _elves(json.loads(proc.stdout))["bin/hello"]["interpreter"] == "/lib/ld-linux-armhf.so.3"


def test_cxx_on_rpi0_uses_llvm_libcxx_linked_in(builds):
    result = builds.get("cxx-hello", "rpi0")
    elf = _elves(result)["bin/cxx-hello"]
    assert "libstdc++.so.6" not in elf["needed"] and elf["glibcxx"] is None  # libc++, static
    assert (elf["float_abi"], elf["arm_arch"], elf["arm_thumb_isa"]) == ("hard", "v6", 1)
    run = xbuild("run", "--target", "rpi0", result["artifacts"][0]["path"], "--", "bin/cxx-hello", "a")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "cxx-hello: 1 argument(s), half of 5 is 2.5"


def test_jetson_nano_on_l4t_r32_needs_nothing_above_glibc_2_27(builds):
    result = builds.get("hello-make", "jetson-nano")
    manifest = _manifest(result)
    assert manifest["options"]["os"] == "l4t-r32" and manifest["toolchain"]["name"] == "zig"
    assert manifest["target"]["floors"] == {"os": "l4t-r32", "suite": "bullseye", "glibc": "2.27",
                                            "glibcxx": "3.4.25", "cxxabi": "1.3.11"}
    elf = _elves(result)["bin/hello"]
    assert elf["machine"] == "AArch64" and elf["interpreter"] == "/lib/ld-linux-aarch64.so.1"
    assert glibc_tuple(elf["glibc"]) <= (2, 27)
    run = xbuild("run", "--target", "jetson-nano", result["artifacts"][0]["path"], "--", "bin/hello")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "Hello from xbuild (hello-make)"
    assert "running on Debian bullseye's arm64 userland, a stand-in for it" in run.stderr
