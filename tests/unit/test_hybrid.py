"""--mode hybrid without the engine: the toolchain it picks and the environment a build sees, the
image definition (the emulate builder plus the cross toolchain's files), the cache key, the boards
it refuses, and the hint that suggests it when a cross build fails running target code (on lines
captured from real failures: autoconf 2.72 in the trixie armhf cross builder, bash and dash)."""

from __future__ import annotations

import pytest

from tests.helpers import make_project, xbuild
from xbuild import toolchain
from xbuild.board import targets
from xbuild.containers import images
from xbuild.errors import ConfigError
from xbuild.pipeline import cache, hints
from xbuild.pipeline import spec as specs
from xbuild.request import BuildRequest, Mode
from xbuild.toolchain import pick

# `xbuild --target rpi3` of a project whose configure.ac has an AC_RUN_IFELSE probe.
AUTOCONF_PROBE = """checking for arm-linux-gnueabihf-gcc... arm-linux-gnueabihf-gcc
checking whether the C compiler works... yes
checking whether we are cross compiling... yes
checking for arm-linux-gnueabihf-gcc option to enable C11 features... none needed
configure: error: in '/xbuild/src':
configure: error: cannot run test program while cross compiling
See 'config.log' for more details
checking the size of long, by running a program... """
BASH_EXEC = "bash: ./gen: cannot execute binary file: Exec format error"
DASH_EXEC = "sh: 1: ./gen: Exec format error"
AUTOCONF_NO_HOST = """checking whether we are cross compiling... configure: error: in '/xbuild/src':
configure: error: cannot run C compiled programs.
If you meant to cross compile, use '--host'."""


@pytest.fixture(autouse=True)
def x86_64_build_machine(monkeypatch):
    monkeypatch.setattr(toolchain.hybrid, "host_arch", lambda: "amd64")
    monkeypatch.setattr(images, "host_arch", lambda: "amd64")


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "proj", {"Makefile": "all:\n\tgcc -o hi hi.c\n", "hi.c": ""})


def test_hybrid_picks_the_cross_gcc_and_the_build_looks_native():
    tc = toolchain.pick(targets.get("rpi3"), "hybrid")
    assert (tc.name, tc.mode, tc.definition.family) == ("gcc-hybrid", "hybrid", "hybrid")
    assert isinstance(tc, toolchain.Gcc)  # Debian's GCC: its shims and flags, in its own image
    env = tc.environment(jobs=2)
    # configure sees a native build: no --host differing from --build, no cross files
    assert env["XBUILD_BUILD"] == env["XBUILD_HOST"] == "arm-linux-gnueabihf"
    assert env["XBUILD_CMAKE_TOOLCHAIN"] == env["XBUILD_MESON_CROSS"] == ""
    assert env["PKG_CONFIG"] == "pkg-config" and env["AR"] == "ar"  # the root filesystem's pkg-config
    assert env["CC"] == "arm-linux-gnueabihf-gcc" and env["XBUILD_MODE"] == "hybrid"
    files = tc.files()
    assert not {"toolchain.cmake", "cross.ini", "bin/pkg-config"} & set(files)
    # plain gcc and the binutils reach the cross tools, with the board's tuning
    assert files["bin/gcc"].startswith(
        "#!/bin/sh\nexec $XBUILD_CCACHE /usr/bin/arm-linux-gnueabihf-gcc -mcpu=cortex-a53")
    assert files["bin/g++"].startswith("#!/bin/sh\nexec $XBUILD_CCACHE /usr/bin/arm-linux-gnueabihf-g++ ")
    for tool in ("ar", "ld", "as", "ranlib", "strip"):
        assert files[f"bin/{tool}"] == f'#!/bin/sh\nexec /usr/bin/arm-linux-gnueabihf-{tool} "$@"\n'


@pytest.mark.parametrize("board, os, why", [
    ("rpi0", None, "its C runtime must be built for its exact CPU (zig)"),
    ("rpi1", None, "its C runtime must be built for its exact CPU (zig)"),
    ("jetson-nano", None, "its glibc 2.27 is older than its package suite's"),
])
def test_boards_that_need_zig_are_refused_with_the_reason(board, os, why):
    with pytest.raises(ConfigError) as exc:
        toolchain.pick(targets.get(board).with_os(os), "hybrid")
    assert "cannot build with --mode hybrid" in exc.value.message and why in exc.value.message
    assert exc.value.hint == "drop --mode hybrid: cross mode uses zig"


def test_hybrid_needs_an_x86_64_build_machine(monkeypatch):
    monkeypatch.setattr(toolchain.hybrid, "host_arch", lambda: "arm64")
    with pytest.raises(ConfigError, match="this machine is arm64"):
        toolchain.pick(targets.get("rpi3"), "hybrid")


def test_hybrid_and_static_do_not_mix():
    with pytest.raises(ConfigError, match="not --mode hybrid"):
        toolchain.pick(targets.get("rpi3"), "hybrid", static=True)


def test_the_cli_refuses_a_zig_board_before_any_work(project):
    proc = xbuild("--target", "rpi0", project, "--mode", "hybrid")
    assert proc.returncode == 6, proc.stderr
    assert "rpi0 on Raspberry Pi OS trixie cannot build with --mode hybrid" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_image_is_the_emulate_builder_with_the_cross_builders_files():
    rpi3 = targets.get("rpi3")
    hybrid = images.builder_def(pick(rpi3, "hybrid"))
    emulate, cross = images.builder_def(pick(rpi3, "emulate")), images.builder_def(pick(rpi3, "cross"))
    (files,) = hybrid.needs
    assert hybrid.parent == emulate and files.parent == cross
    assert hybrid.platform == "linux/arm/v7" and files.platform == "linux/amd64"
    assert hybrid.dockerfile.startswith(f"FROM {emulate.tag}\nCOPY --from={files.tag} /xbuild-hybrid/ /\n")
    assert files.dockerfile.startswith(f"FROM {cross.tag}\nRUN ")
    # the cross C library stays out: the root filesystem's libc6-dev is linked against
    assert "grep -vE '^(libc6|libc6-dev|linux-libc-dev)-armhf-cross$'" in files.dockerfile
    # the build machine's shell and tools, but never what reports the machine
    assert "dpkg -L coreutils dash bash sed grep mawk make m4 diffutils findutils" in files.dockerfile
    assert "grep -vE '/(arch|uname|nproc|od|stdbuf|chroot|hostid|bashbug)$'" in files.dockerfile
    assert hybrid.tag.startswith("xbuild/builder:trixie-armhf-hybrid-")
    assert dict(hybrid.labels)["org.xbuild.mode"] == "hybrid"
    # content-hashed: another release is another image, all the way down
    bookworm = images.builder_def(pick(rpi3.with_os("bookworm"), "hybrid"))
    assert bookworm.tag != hybrid.tag and bookworm.needs[0].tag != files.tag
    assert images.builder_def(pick(rpi3, "hybrid")).tag == hybrid.tag


def test_declared_packages_are_the_target_roots_own(project):
    defn = images.builder_def(pick(targets.get("rpi3"), "hybrid"), ("libssl-dev",), tools=("xsltproc",))
    assert defn.kind == "deps" and defn.parent == images.builder_def(pick(targets.get("rpi3"), "hybrid"))
    assert "libssl-dev xsltproc" in defn.dockerfile and ":armhf" not in defn.dockerfile


def test_the_cache_key_distinguishes_hybrid(project):
    keys = set()
    for mode in tuple(Mode):
        spec = specs.resolve(project, BuildRequest("rpi3", mode=mode))
        keys.add(cache.key(spec, "source", images.builder_def(pick(spec.target, mode)).tag))
        assert spec.options()["mode"] == mode
    assert len(keys) == len(tuple(Mode)) == 3


@pytest.mark.parametrize("log", [AUTOCONF_PROBE, BASH_EXEC, DASH_EXEC, AUTOCONF_NO_HOST])
def test_a_cross_build_that_runs_target_code_is_told_about_hybrid(project, log):
    spec = specs.resolve(project, BuildRequest("rpi3"))
    hint = hints.for_build("full log: /x.failed.log", log.splitlines(), spec)
    assert hint == ("this build runs programs it built for rpi3, which cross mode cannot; build it "
                    "in the board's root filesystem with the cross compiler: xbuild --target rpi3 "
                    f"--mode hybrid {project}\nfull log: /x.failed.log")


def test_the_hybrid_hint_names_the_release_and_only_where_hybrid_helps(project):
    bookworm = specs.resolve(project, BuildRequest("rpi3", os="bookworm"))
    assert hints.hybrid(BASH_EXEC.splitlines(), bookworm).endswith(
        f"xbuild --target rpi3 --os bookworm --mode hybrid {project}")
    for spec in (specs.resolve(project, BuildRequest("rpi3", mode="hybrid")),  # already there
                 specs.resolve(project, BuildRequest("rpi3", mode="emulate")),
                 specs.resolve(project, BuildRequest("rpi0"))):  # zig: hybrid cannot build it
        assert hints.hybrid(AUTOCONF_PROBE.splitlines(), spec) is None
    # a failure that is not about running target code
    assert hints.hybrid(["make: *** [all] Error 2", "gen.c:1: error: expected ';'"],
                        specs.resolve(project, BuildRequest("rpi3"))) is None


def test_every_mode_choice_offers_hybrid():
    for command in (["build"], ["shell"], ["verify"], ["submit"], ["images", "build"]):
        proc = xbuild(*command, "--help")
        assert proc.returncode == 0 and "hybrid" in proc.stdout, (command, proc.stdout)


def test_other_architectures_get_their_own_cross_files():
    arm64 = images.builder_def(pick(targets.get("arm64"), "hybrid"))
    assert arm64.platform == "linux/arm64/v8" and arm64.tag.startswith("xbuild/builder:trixie-arm64-hybrid-")
    (files,) = arm64.needs
    assert "-aarch64-linux-gnu(-base)?$" in files.dockerfile and "-arm64-cross$" in files.dockerfile


def test_the_service_accepts_hybrid_and_refuses_what_it_cannot_build(monkeypatch):
    from xbuild.service.api import create_app
    monkeypatch.setenv("XBUILD_API_TOKENS", "t0ken-for-the-test")
    client = create_app(jobs=object()).test_client()  # both answers come before any job is made
    auth = {"Authorization": "Bearer t0ken-for-the-test"}
    bogus = client.post("/v1/builds", json={"target": "rpi3", "mode": "native",
                                            "git_url": "https://example.org/a.git"}, headers=auth)
    assert bogus.status_code == 422 and bogus.get_json()["hint"] == "cross, emulate or hybrid"
    rpi0 = client.post("/v1/builds", json={"target": "rpi0", "mode": "hybrid",
                                           "git_url": "https://example.org/a.git"}, headers=auth)
    assert rpi0.status_code == 422 and "cannot build with --mode hybrid" in rpi0.get_json()["error"]
