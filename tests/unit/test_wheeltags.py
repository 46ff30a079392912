"""wheeltags: a wheel's tags for a board and release, checked against the `packaging` library's own
reckoning of what the board's pip accepts (tags._linux_platforms and _manylinux, fed the board's
uname, glibc and an ELF header like its python3's). The board's real pip under qemu is the
integration test's (tests/integration/test_wheeltags_pip.py)."""

from __future__ import annotations

import struct
import sys
import sysconfig

import pytest
from packaging import _manylinux
from packaging import tags as ptags

from xbuild.artifact import wheeltags
from xbuild.board import targets
from xbuild.errors import ConfigError

# e_machine and e_flags of the board's python3: what packaging reads to allow armv7l/i686 manylinux
ARM_HARD = (40, 0x05000400)   # EM_ARM, EABI5 + hard-float (Debian armhf, Raspberry Pi OS)
ARM_SOFT = (40, 0x05000200)   # EM_ARM, EABI5 + soft-float (Debian armel)
ELF_OF = {"armhf": ARM_HARD, "armel": ARM_SOFT, "i386": (3, 0), "amd64": (62, 0), "arm64": (183, 0),
          "ppc64el": (21, 0), "s390x": (22, 0), "riscv64": (243, 5)}
# What `uname -m` says on the boards, independent of the code under test: the kernel's (and, for
# armel, qemu's arm926) names; an ARMv7/v8 Pi with a 32-bit OS on a 64-bit kernel says aarch64.
UNAME = {"amd64": ["x86_64"], "i386": ["i686"], "arm64": ["aarch64"], "armhf": ["armv7l", "aarch64"],
         "armel": ["armv5tel", "armv5tejl", "armv6l"], "ppc64el": ["ppc64le"], "s390x": ["s390x"],
         "riscv64": ["riscv64"]}
ARMV6 = {"rpi0", "rpi1"}


def elf_header(debian_arch: str) -> bytes:
    machine, flags = ELF_OF[debian_arch]
    bits64 = debian_arch not in ("armhf", "armel", "i386")
    endian = ">" if debian_arch == "s390x" else "<"
    ident = b"\x7fELF" + bytes([2 if bits64 else 1, 2 if endian == ">" else 1, 1]) + bytes(9)
    rest = (struct.pack(endian + "HHIQQQIHHHHHH", 3, machine, 1, 0, 64, 0, flags, 64, 56, 0, 64, 0, 0)
            if bits64 else
            struct.pack(endian + "HHIIIIIHHHHHH", 3, machine, 1, 0, 52, 0, flags, 52, 32, 0, 40, 0, 0))
    return ident + rest


@pytest.fixture
def board_pip(monkeypatch, tmp_path):
    """The tags pip accepts on a board: packaging's logic, with the board's uname, glibc, python3."""
    def accepted(target, uname: str) -> set[ptags.Tag]:
        exe = tmp_path / "python3"
        exe.write_bytes(elf_header(target.debian_arch))
        glibc = tuple(int(n) for n in target.selected.glibc.split("."))
        monkeypatch.setattr(sysconfig, "get_platform", lambda: f"linux-{uname}")
        monkeypatch.setattr(_manylinux, "_get_glibc_version", lambda: glibc)
        monkeypatch.setattr(_manylinux, "_get_manylinux_module", lambda: None)
        monkeypatch.setattr(sys, "executable", str(exe))
        is_32bit = elf_header(target.debian_arch)[4] == 1
        platforms = list(ptags._linux_platforms(is_32bit))
        minor = int(target.selected.python.split(".")[1])
        abi = f"cp3{minor}" + ("m" if minor < 8 else "")
        return set(ptags.cpython_tags((3, minor), [abi], platforms))
    return accepted


def boards_and_releases():
    for t in targets.all_targets().values():
        for release in t.os:
            if release != "l4t-r32":  # its pip (9.0.1) is older than packaging: see below
                yield pytest.param(t.name, release, id=f"{t.name}-{release}")


@pytest.mark.parametrize("board,release", boards_and_releases())
def test_the_boards_pip_accepts_the_wheel_on_every_uname(board, release, board_pip):
    t = targets.get(board).with_os(release)
    wheel = wheeltags.for_board(t)
    unames = ["armv6l"] if board in ARMV6 else UNAME[t.debian_arch]
    for uname in unames:
        assert wheel.tags & board_pip(t, uname), (str(wheel), uname)
    # every tag of the set is one that some uname of the board gives
    accepted = set().union(*(board_pip(t, u) for u in unames))
    assert wheel.tags <= accepted


@pytest.mark.parametrize("board,release", boards_and_releases())
def test_runnable_platforms_are_packagings_for_the_board(board, release, board_pip):
    """What the host asks `pip download --platform` for: every platform the board's pip takes."""
    t = targets.get(board).with_os(release)
    uname = "armv6l" if board in ARMV6 else UNAME[t.debian_arch][0]
    expected = {tag.platform for tag in board_pip(t, uname)}
    if t.debian_arch == "armel":  # one wheel for every CPU armel runs on
        expected = set().union(*({tag.platform for tag in board_pip(t, u)} for u in UNAME["armel"]))
    assert set(wheeltags.runnable_platforms(t)) == expected
    assert set(wheeltags.platform_tags(t)) <= expected


@pytest.mark.parametrize("board,release", boards_and_releases())
def test_abi3_wheels_are_accepted_too(board, release, board_pip):
    t = targets.get(board).with_os(release)
    wheel = wheeltags.for_board(t, abi3="cp37")
    assert str(wheel).startswith("cp37-abi3-")
    uname = "armv6l" if board in ARMV6 else UNAME[t.debian_arch][0]
    assert wheel.tags & board_pip(t, uname)


@pytest.mark.parametrize("board,release,expected", [
    ("rpi0", "trixie", "cp313-cp313-linux_armv6l"),
    ("rpi1", "bullseye", "cp39-cp39-linux_armv6l"),
    ("rpi2", "bookworm", "cp311-cp311-manylinux_2_36_armv7l"),
    ("rpi3", "trixie", "cp313-cp313-manylinux_2_41_armv7l"),
    ("rpi4", "bullseye", "cp39-cp39-manylinux_2_31_aarch64"),
    ("rpi5", "trixie", "cp313-cp313-manylinux_2_41_aarch64"),
    ("armel", "bookworm", "cp311-cp311-linux_armv5tel.linux_armv5tejl.linux_armv6l"),
    ("i386", "bookworm", "cp311-cp311-manylinux_2_36_i686"),
    ("ppc64el", "trixie", "cp313-cp313-manylinux_2_41_ppc64le"),
    ("s390x", "bullseye", "cp39-cp39-manylinux_2_31_s390x"),
    ("riscv64", "trixie", "cp313-cp313-manylinux_2_41_riscv64"),
    # bionic's pip 9 gives aarch64 no manylinux tag; an upgraded pip takes the first
    ("jetson-nano", "l4t-r32", "cp36-cp36m-manylinux_2_27_aarch64.linux_aarch64"),
])
def test_tags(board, release, expected):
    assert str(wheeltags.for_board(targets.get(board).with_os(release))) == expected


def test_a_wheel_linking_libraries_outside_manylinux_is_linux_tagged():
    t = targets.get("rpi3")
    assert wheeltags.platform_tags(t, manylinux=False) == ("linux_armv7l",)
    assert wheeltags.platform_tags(targets.get("rpi0"), manylinux=False) == ("linux_armv6l",)


def test_what_pip_elsewhere_refuses(board_pip):
    """The tags keep a wheel off CPUs, ABIs and releases where it cannot run."""
    rpi3, rpi0, armel = targets.get("rpi3"), targets.get("rpi0"), targets.get("armel")
    # ARMv7 code on a Pi Zero: refused; ARMv6 code on a Pi 3 is never offered either (own index)
    assert not wheeltags.for_board(rpi3).tags & board_pip(rpi0, "armv6l")
    # armel (soft-float) code in an armhf python3 on ARMv7, and the other way round
    assert not wheeltags.for_board(armel).tags & board_pip(rpi3, "armv7l")
    assert not wheeltags.for_board(rpi3).tags & board_pip(armel, "armv7l")
    # a trixie wheel (glibc 2.41) on bookworm (2.36), and a CPython 3.13 one on 3.11
    bookworm = rpi3.with_os("bookworm")
    assert not wheeltags.for_board(rpi3).tags & board_pip(bookworm, "armv7l")
    assert wheeltags.for_board(bookworm).tags & board_pip(rpi3, "armv7l") == set()  # cp311 on 3.13


def test_abi3_newer_than_the_releases_python_is_refused():
    with pytest.raises(ConfigError, match=r"abi3 wheel for cp312 and later, and Raspberry Pi OS bookworm "
                                          r"has Python 3.11") as exc:
        wheeltags.for_board(targets.get("rpi3").with_os("bookworm"), abi3="cp312")
    assert "--os" in exc.value.hint
    with pytest.raises(ConfigError, match="not a CPython tag"):
        wheeltags.for_board(targets.get("rpi3"), abi3="py38")


@pytest.mark.parametrize("project,version,name", [
    ("msgpack", "1.1.0", "msgpack-1.1.0-cp313-cp313-manylinux_2_41_armv7l.whl"),
    ("PyYAML", "6.0.2", "pyyaml-6.0.2-cp313-cp313-manylinux_2_41_armv7l.whl"),
    ("my-Package.x", "1.0rc1", "my_package_x-1.0rc1-cp313-cp313-manylinux_2_41_armv7l.whl"),
])
def test_filename(project, version, name):
    from packaging.utils import parse_wheel_filename
    tags = wheeltags.for_board(targets.get("rpi3"))
    assert tags.filename(project, version) == name
    assert parse_wheel_filename(name)[3] == tags.tags
