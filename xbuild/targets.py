"""Boards: targets/*.toml loaded into frozen `Target`s. A target carries its whole ABI story."""

from __future__ import annotations

import difflib
import functools
import platform as _platform
from dataclasses import dataclass

from xbuild.abi import AbiRequirement
from xbuild.datafiles import build, data_files, read_toml
from xbuild.errors import ConfigError, UnknownTarget

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
    suite: str            # Debian suite of the builder and runtime images
    glibc: str            # the glibc the suite ships: the newest symbol version an artifact may need
    abi: AbiRequirement
    qemu_cpu: str | None = None  # QEMU_CPU model closest to the board's core
    cflags: tuple[str, ...] = ()  # tuning passed to every compiler call (through the shims)
    aliases: tuple[str, ...] = ()
    notes: str = ""
    distro: str = "debian"

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
                "glibc": self.glibc, "aliases": list(self.aliases), "notes": self.notes}


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
    data["qemu_cpu"] = data.get("qemu_cpu") or None
    t = build(_AbiTable, abi, f"{path} [abi]")
    data["abi"] = AbiRequirement(machine=t.machine, bits=t.bits, endian=t.endian,
                                 float_abi=t.float_abi, arm_arch_max=t.arm_arch_max,
                                 glibc_max=data.get("glibc"))
    return build(Target, {"name": path.stem, **data}, str(path))


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
