"""Boards: targets/*.toml loaded into frozen `Target`s. A target carries its whole ABI story."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import platform as _platform
from dataclasses import dataclass
from pathlib import Path

from xbuild import schema
from xbuild.board import releases
from xbuild.board.releases import Release
from xbuild.board.requirement import ARM_RANK, MACHINES, AbiRequirement, arm_arch_fits
from xbuild.datafiles import data_files, toolchain_files
from xbuild.errors import UnknownRelease, UnknownTarget
from xbuild.schema import Invalid

# uname -m -> Debian architecture, for "is this target native here?"
_HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf", "i686": "i386",
              "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}
# Debian architectures a host runs without qemu.
_NATIVE = {"amd64": {"amd64", "i386"}, "arm64": {"arm64", "armhf", "armel"}}


def host_arch() -> str:
    return _HOST_ARCH.get(_platform.machine(), _platform.machine())


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    debian_arch: str
    triple: str           # GNU triple of the cross toolchain (and of --host for autoconf)
    qemu_arch: str        # qemu-<arch>-static, /proc/sys/fs/binfmt_misc/qemu-<arch>
    platform: str         # Docker platform with variant, e.g. linux/arm/v7
    os: tuple[str, ...]   # the OS releases the board runs (releases/*.toml), oldest first
    default_os: str       # the one a build is for unless --os says otherwise
    abi: AbiRequirement   # for the selected release (its glibc, libstdc++ and loader)
    qemu_cpu: str | None = None  # QEMU_CPU model closest to the board's core
    cflags: tuple[str, ...] = ()  # tuning passed to every compiler call (through the shims)
    aliases: tuple[str, ...] = ()
    notes: str = ""
    distro: str = "Debian"  # whose build of the release the board runs, e.g. "Raspberry Pi OS"
    # A toolchain (toolchains/*.toml) the board needs whatever its release, e.g. "zig" for the Pi
    # Zero/1, whose ARMv6 C runtime Debian's armhf GCC cannot make. None: toolchain.pick decides.
    toolchain: str | None = None
    release: Release | None = None  # the selected release: default_os until with_os() picks another

    @property
    def selected(self) -> Release:
        """The selected release; loading binds one to every board, so it is never missing."""
        assert self.release is not None, f"board {self.name} has no release bound"
        return self.release

    @property
    def suite(self) -> str:
        """The Debian suite of the builder and runtime images: the release's."""
        return self.selected.suite

    @property
    def glibc(self) -> str:
        return self.selected.glibc

    @property
    def os_name(self) -> str:
        """"Raspberry Pi OS bullseye"; a release that is no Debian suite names itself ("NVIDIA
        L4T R32 (Ubuntu 18.04)"), not "Debian l4t-r32"."""
        release = self.selected
        return release.description if release.name != release.suite else \
            f"{self.distro} {release.name}"

    def with_os(self, name: str | None) -> Target:
        """The board running release `name` (None: its default). Unknown: UnknownRelease (36)."""
        name = (name or self.default_os).strip().lower()
        if name not in self.os:
            raise UnknownRelease(
                f"{self.name} does not run {name!r}: its releases are {self.releases_text()}",
                hint="choose one with --os (XBUILD_OS) or os = \"...\" in xbuild.toml; "
                     "`xbuild targets` lists each board's releases")
        return _bind(self, releases.all_releases()[name])

    def releases_text(self) -> str:
        return ", ".join(f"{n} (default)" if n == self.default_os else n for n in self.os)

    @property
    def os_arch_variant(self) -> tuple[str, str, str | None]:
        parts = self.platform.split("/")
        return parts[0], parts[1], (parts[2] if len(parts) > 2 else None)

    @property
    def needs_qemu(self) -> bool:
        return self.debian_arch not in _NATIVE.get(host_arch(), {host_arch()})

    @property
    def run_env(self) -> dict[str, str]:
        """Environment that makes qemu-user emulate the board's CPU (QEMU_CPU is read by qemu)."""
        return {"QEMU_CPU": self.qemu_cpu} if self.qemu_cpu and self.needs_qemu else {}

    def summary(self) -> dict:
        return {"name": self.name, "arch": self.debian_arch, "triple": self.triple,
                "platform": self.platform, "cpu": self.qemu_cpu, "suite": self.suite,
                "glibc": self.glibc, "aliases": list(self.aliases), "notes": self.notes,
                "os": self.selected.name, "os_name": self.os_name, "releases": list(self.os),
                "default_os": self.default_os, "floors": self.selected.floors(),
                "loader": self.selected.loader(self.debian_arch)}


def _arm_only(abi: dict) -> None:
    """An ARM board says its float ABI and newest architecture; no other board has either."""
    for key in ("float_abi", "arm_arch_max"):
        if abi["machine"] == "ARM" and key not in abi:
            raise Invalid(key, "is missing: an ARM board needs it", hint=f"add {key} to [abi]")
        if abi["machine"] != "ARM" and key in abi:
            raise Invalid(key, f"is for ARM boards only, and this one is {abi['machine']}")


def _default_in_os(board: dict) -> None:
    if board["default_os"] not in board["os"]:
        raise Invalid("default_os", f"must be one of os = {list(board['os'])}, not {board['default_os']!r}")


def _os_carries_arch(board: dict) -> None:
    known = releases.all_releases()
    for name in board["os"]:
        if known[name].loader(board["debian_arch"]) is None:
            raise Invalid("os", f"lists {name}, which has no {board['debian_arch']} port "
                                f"(no loader for it in releases/{name}.toml)")


# One line per key of a board file (and a field of Target or AbiRequirement of the same name).
# Optional keys left out take the dataclass's default.
ABI = schema.Table({
    "machine": schema.one_of(lambda: sorted(set(MACHINES.values())), "an ELF machine xbuild reads",
                             required=True),
    "bits": schema.one_of((32, 64), required=True),
    "endian": schema.one_of(("little", "big"), required=True),
    # Only the calling convention counts here: code built with -mfloat-abi=softfp passes floats in
    # core registers, so its ELF says "soft" (elf.py reads hard or soft, nothing else).
    "float_abi": schema.one_of(("hard", "soft"), hint='-mfloat-abi=softfp code is "soft"'),
    "arm_arch_max": schema.one_of(lambda: list(ARM_RANK), "an ARM architecture xbuild knows"),
}, required=True, rules=(_arm_only,))
BOARD = schema.Table({
    "description": schema.text(required=True),
    "debian_arch": schema.one_of(releases.ARCHES, "a Debian architecture xbuild knows", required=True),
    "triple": schema.text("a GNU triple such as arm-linux-gnueabihf", r"[a-z0-9_]+(-[a-z0-9_]+){2,3}",
                          required=True),
    "qemu_arch": schema.text("a qemu-user architecture such as arm or aarch64", r"[a-z0-9_]+", required=True),
    "qemu_cpu": schema.text('a QEMU_CPU model such as "cortex-a7" ("": qemu\'s default)', r"[A-Za-z0-9_.+-]*",
                            convert=lambda v: v or None),
    "platform": schema.text("a Docker platform linux/<arch>[/<variant>], such as linux/arm/v7",
                            r"linux/[a-z0-9]+(/v[0-9]+)?", required=True),
    "os": schema.List(schema.one_of(lambda: list(releases.all_releases()), "an OS release"),
                      required=True, empty=False),
    "default_os": schema.text("one of the board's releases", required=True),
    "cflags": schema.List(schema.text("a compiler flag such as -mcpu=cortex-a7", r"-\S+")),
    "aliases": schema.List(schema.text("a board name (letters, digits, . _ + -)", schema.NAME)),
    "notes": schema.ANY_TEXT,
    "distro": schema.text("a distribution name such as \"Raspberry Pi OS\""),
    "toolchain": schema.one_of(lambda: [f.stem for f in toolchain_files()], "a toolchain (toolchains/*.toml)"),
    "abi": ABI,
}, rules=(_default_in_os, _os_carries_arch))


def _load(path: Path) -> Target:
    data = schema.load(path, BOARD, hint="targets/rpi3.toml shows every key of a board")
    # The release's floors (glibc_max ...) are bound below, per release.
    abi = AbiRequirement(**{"float_abi": None, "arm_arch_max": None, **data.pop("abi")}, glibc_max=None)
    target = Target(name=path.stem, abi=abi, **data)
    return _bind(target, releases.all_releases()[target.default_os])


def _bind(t: Target, release: Release) -> Target:
    """The board on `release`: the ABI gate's floors and loader become the release's."""
    abi = dataclasses.replace(t.abi, glibc_max=release.glibc, glibcxx_max=release.glibcxx,
                              cxxabi_max=release.cxxabi, loader=release.loader(t.debian_arch))
    bound = dataclasses.replace(t, release=release, abi=abi)
    return dataclasses.replace(bound, abi=dataclasses.replace(abi, os=bound.os_name))


@functools.cache
def all_targets() -> dict[str, Target]:
    return {t.name: t for t in map(_load, data_files("targets"))}


def qemu_arches() -> list[str]:
    """The qemu-user architectures the boards need on this machine (binfmt, doctor)."""
    return sorted({t.qemu_arch for t in all_targets().values() if t.needs_qemu})


def get(name: str) -> Target:
    targets = all_targets()
    if name in targets:
        return targets[name]
    for t in targets.values():  # names and aliases alike, in any case: "RPI3", "Pi3"
        if name.lower() in (n.lower() for n in (t.name, *t.aliases)):
            return t
    names = list(targets) + [a for t in targets.values() for a in t.aliases]
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.5)
    did_you_mean = f"did you mean {' or '.join(close)}? " if close else ""
    raise UnknownTarget(f"unknown target {name!r}",
                        hint=f"{did_you_mean}`xbuild targets` lists the boards")


# An ARM board older than ARMv7 (Pi Zero/1) on Debian armhf: Debian's armhf userland is ARMv7
# and dies with SIGILL under the board's own CPU model, so code that needs that userland (a
# dynamic program, configure probes) runs under the oldest core Debian armhf supports.
DEBIAN_ARMHF_CPU = "cortex-a7"


def debian_userland_cpu(target: Target) -> str | None:
    """The QEMU_CPU under which the release's Debian userland runs on this board, when the
    board's own model cannot run it; else None. (Here, not in toolchain/zig.py: the runtime
    image, `xbuild run` and zig's configure probes all need it.)"""
    if target.debian_arch == "armhf" and target.abi.arm_arch_max and \
            not arm_arch_fits("v7", target.abi.arm_arch_max):
        return DEBIAN_ARMHF_CPU
    return None
