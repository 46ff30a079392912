"""Boards: targets/*.toml loaded into frozen `Target`s. A target carries its whole ABI story."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import platform as _platform
from dataclasses import dataclass

from xbuild import releases
from xbuild.abi import AbiRequirement
from xbuild.config import _line_of
from xbuild.datafiles import build, data_files, read_toml
from xbuild.errors import ConfigError, UnknownRelease, UnknownTarget
from xbuild.releases import Release

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

    def with_os(self, name: str | None) -> "Target":
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


@dataclass(frozen=True)
class _AbiTable:
    machine: str
    bits: int
    endian: str
    float_abi: str | None = None
    arm_arch_max: str | None = None


def _load(path) -> Target:
    data = read_toml(path)
    abi = data.pop("abi", None)
    if not isinstance(abi, dict):
        raise ConfigError(f"{path}: missing [abi] table")
    if "release" in data:  # chosen per build, never written in a board file
        raise ConfigError(f"{path}: unknown key 'release'", hint="a board lists `os` and `default_os`")
    data["qemu_cpu"] = data.get("qemu_cpu") or None
    t = build(_AbiTable, abi, f"{path} [abi]")
    data["abi"] = AbiRequirement(machine=t.machine, bits=t.bits, endian=t.endian,
                                 float_abi=t.float_abi, arm_arch_max=t.arm_arch_max, glibc_max=None)
    target = build(Target, {"name": path.stem, **data}, str(path))
    _check_os(target, path)
    return _bind(target, releases.all_releases()[target.default_os])


def _check_os(t: Target, path) -> None:
    """The board's releases exist and carry its architecture; the default is one of them."""
    text, known = path.read_text(), releases.all_releases()
    if not t.os:
        raise ConfigError(f"{path}{_line_of(text, 'os')}: 'os' lists no release",
                          hint=f"releases: {', '.join(known)}")
    for name in t.os:
        if name not in known:
            raise ConfigError(f"{path}{_line_of(text, 'os')}: {name!r} is not a release "
                              f"(releases/*.toml)", hint=f"releases: {', '.join(known)}")
        if known[name].loader(t.debian_arch) is None:
            raise ConfigError(f"{path}{_line_of(text, 'os')}: {name} has no {t.debian_arch} port "
                              f"(no loader for it in releases/{name}.toml)")
    if t.default_os not in t.os:
        raise ConfigError(f"{path}{_line_of(text, 'default_os')}: default_os {t.default_os!r} is "
                          f"not one of os = {list(t.os)}")


def _bind(t: Target, release: Release) -> Target:
    """The board on `release`: the ABI gate's floors and loader become the release's."""
    abi = dataclasses.replace(t.abi, glibc_max=release.glibc, glibcxx_max=release.glibcxx,
                              cxxabi_max=release.cxxabi, loader=release.loader(t.debian_arch),
                              os=f"{t.distro} {release.name}")
    return dataclasses.replace(t, release=release, abi=abi)


@functools.cache
def all_targets() -> dict[str, Target]:
    return {t.name: t for t in map(_load, data_files("targets"))}


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
