"""A wheel's tags for a board and its OS release (PEP 425, PEP 600): what pip on the board accepts,
and nothing that would let pip elsewhere install code that cannot run there.

pip reads the platform from `sysconfig.get_platform()`, `linux_<uname -m>`, and adds a
`manylinux_2_<N>_<arch>` tag for every glibc 2.N up to the board's own, but only for the
architectures packaging knows an ABI for (packaging/_manylinux.py): x86_64, i686, aarch64,
ppc64le, s390x, riscv64, and armv7l when python3 itself is an ARM hard-float ELF. So:
- ARMv6 boards (Pi Zero/1, uname armv6l) get `linux_armv6l` only: no manylinux tag exists for it;
- Debian armel (soft-float) never gets a manylinux tag: its uname names the CPU, armv5tel
  (qemu's arm926, Marvell's Kirkwood), armv5tejl (a real ARM926EJ-S) or armv6l (an ARMv6 Pi), so
  its wheel carries all three. Not armv7l: armhf's pip takes linux_armv7l, and an armel
  extension does not load in an armhf python3;
- a release whose pip predates PEP 600 (pip < 20.3: L4T R32's 9.0.1) also gets `linux_<arch>`,
  which its pip takes, beside the manylinux tag an upgraded pip takes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.tags import Tag, parse_tag
from packaging.utils import canonicalize_name
from packaging.version import Version

from xbuild.board.requirement import arm_arch_fits
from xbuild.board.targets import Target
from xbuild.errors import ConfigError

# Debian architecture -> the machine names (uname -m) of the CPUs its userland runs on, as pip's
# platform tags spell them; armhf's is armv6l instead on a board older than ARMv7 (machine_names).
_MACHINES = {"amd64": ("x86_64",), "i386": ("i686",), "arm64": ("aarch64",), "armhf": ("armv7l",),
             "armel": ("armv5tel", "armv5tejl", "armv6l"), "ppc64el": ("ppc64le",),
             "s390x": ("s390x",), "riscv64": ("riscv64",)}
# The first pip whose packaging gives the architecture manylinux tags (PEP 600 came with 20.3;
# riscv64 joined packaging's list in 24.0, vendored from pip 24.1). Not here: no manylinux tag.
_MANYLINUX_SINCE_PIP = {"x86_64": "20.3", "i686": "20.3", "aarch64": "20.3", "armv7l": "20.3",
                        "ppc64le": "20.3", "s390x": "20.3", "riscv64": "24.1"}
_ABI3 = re.compile(r"cp3(\d+)")


@dataclass(frozen=True)
class WheelTags:
    python: str                 # "cp311"; an abi3 wheel's is the oldest CPython it supports
    abi: str                    # "cp311", "cp36m" (before 3.8), or "abi3"
    platforms: tuple[str, ...]  # "manylinux_2_36_armv7l", or "linux_..." tags

    def __str__(self) -> str:
        """The compressed tag set of a wheel file's name: cp311-cp311-manylinux_2_36_armv7l."""
        return f"{self.python}-{self.abi}-{'.'.join(self.platforms)}"

    @property
    def tags(self) -> frozenset[Tag]:
        return parse_tag(str(self))

    def filename(self, project: str, version: str) -> str:
        """The wheel's file name (binary distribution format: name normalized, `-` escaped)."""
        name = canonicalize_name(project).replace("-", "_")
        return f"{name}-{Version(version)}-{self}.whl"


def machine_names(target: Target) -> tuple[str, ...]:
    """What `uname -m` reports on the board, as pip's platform tags spell it."""
    if target.debian_arch == "armhf" and not arm_arch_fits("v7", target.abi.arm_arch_max or "v7"):
        return ("armv6l",)  # Raspberry Pi OS armhf on an ARM11 (Pi Zero/1)
    return _MACHINES[target.debian_arch]


def platform_tags(target: Target, manylinux: bool = True) -> tuple[str, ...]:
    """The platform tags of a wheel for the board on its selected release. `manylinux`: whether
    the wheel keeps the manylinux policy (it links only glibc, libstdc++ and the other libraries
    every distribution has, or carries the rest grafted in); if not, it is `linux_<arch>`."""
    release = target.selected
    machines = machine_names(target)
    since = _MANYLINUX_SINCE_PIP.get(machines[0])
    if not manylinux or since is None or len(machines) > 1:
        return tuple(f"linux_{m}" for m in machines)
    many = f"manylinux_{release.glibc.replace('.', '_')}_{machines[0]}"
    if Version(release.pip) < Version(since):
        return (many, f"linux_{machines[0]}")  # its own pip's tag, and an upgraded pip's
    return (many,)


# PEP 600's names for the glibc versions manylinux had names for before it (PEP 513, 571, 599)
_LEGACY = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def runnable_platforms(target: Target) -> tuple[str, ...]:
    """The platform tags of wheels that run on the board's release, newest glibc first, as
    packaging lists them for its pip: for fetching a build's requirements on the host with
    `pip download --platform ...`, which takes each tag literally (manylinux_2_41 does not
    bring manylinux_2_17 wheels with it)."""
    return platforms(machine_names(target), target.selected.glibc)


def platforms(machines: tuple[str, ...], glibc: str) -> tuple[str, ...]:
    """runnable_platforms for CPUs named `machines` on a C library `glibc`: also the build
    machine's, whose requirements run in a cross build (the image's Debian suite's glibc)."""
    out = [f"linux_{m}" for m in machines]
    if machines[0] in _MANYLINUX_SINCE_PIP and len(machines) == 1:
        oldest = 5 if machines[0] in ("x86_64", "i686") else 17
        newest = int(glibc.split(".")[1])
        for minor in range(newest, oldest - 1, -1):
            out.append(f"manylinux_2_{minor}_{machines[0]}")
            if minor in _LEGACY:
                out.append(f"{_LEGACY[minor]}_{machines[0]}")
    return tuple(out)


def build_machine(arch: str) -> tuple[str, ...]:
    """The machine names of a Debian architecture (the build machine's: amd64 -> x86_64)."""
    return _MACHINES[arch]


def for_board(target: Target, abi3: str | None = None, manylinux: bool = True) -> WheelTags:
    """The tags of a wheel with extension modules for the board on its selected release.
    `abi3`: the project builds for the stable ABI from this CPython on ("cp38")."""
    major, minor = (int(n) for n in target.selected.python.split("."))
    python = f"cp{major}{minor}"
    if abi3 is None:
        # Before 3.8 CPython's default ABI carried pymalloc's "m" flag (PEP 3149)
        return WheelTags(python, python + ("m" if (major, minor) < (3, 8) else ""),
                         platform_tags(target, manylinux))
    floor = _ABI3.fullmatch(abi3)
    if floor is None:
        raise ConfigError(f"{abi3!r} is not a CPython tag for the stable ABI",
                          hint='name the oldest CPython the abi3 wheel supports, such as "cp38"')
    if int(floor.group(1)) > minor:
        raise ConfigError(f"the project builds an abi3 wheel for {abi3} and later, and "
                          f"{target.os_name} has Python {target.selected.python}",
                          hint="choose a newer release with --os, or lower the project's "
                               "py_limited_api")
    return WheelTags(abi3, "abi3", platform_tags(target, manylinux))
