"""The ABI gate: does each ELF artefact of a build run on the target board?

Catches the classic cross-compilation mistakes before anything is shipped: the wrong machine,
a 64-bit binary for a 32-bit OS, hard- vs soft-float, code for a newer ARM core than the board
has (ARMv7 Debian armhf code on an ARMv6 Pi Zero/1 dies with SIGILL), Thumb-2 or NEON code on an
ARMv6 board, and what the board's OS release lacks: a glibc or libstdc++ (GLIBCXX_, CXXABI_) newer
than the release's, or a program interpreter other than its loader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xbuild.elf import ElfInfo, glibc_tuple


@dataclass(frozen=True)
class AbiRequirement:
    machine: str               # as ElfInfo.machine, e.g. "ARM"
    bits: int
    endian: str
    float_abi: str | None      # ARM: required float ABI, None = don't care
    arm_arch_max: str | None   # newest ARM architecture the CPU runs, e.g. "v6KZ" for arm1176
    glibc_max: str | None      # the glibc the target's distribution ships, e.g. "2.36"
    glibcxx_max: str | None = None  # newest GLIBCXX_ of the release's libstdc++, e.g. "3.4.30"
    cxxabi_max: str | None = None   # newest CXXABI_ of the release's libstdc++, e.g. "1.3.13"
    loader: str | None = None       # the release's program interpreter for this architecture
    os: str | None = None           # the release, for messages: "Raspberry Pi OS bullseye"


@dataclass(frozen=True)
class AbiProblem:
    path: str
    message: str
    symbol: str = ""  # the undefined symbol, for the link check's problems (linkage.check)

    def __str__(self):
        return f"{self.path}: {self.message}"


# A-profile architectures ranked by what a core of that architecture can execute: a core runs
# code built for its own rank or lower. Tag_CPU_arch's numbering is not this order (v6T2 is 8,
# v6K is 9; v6-M is 11, between v7 and v8-A), so it can't be compared directly.
# - v6KZ and v6K share a rank: both are ARMv6 with the K extensions (v6KZ adds TrustZone, which
#   user code never relies on), and GCC marks arm1176jzf-s code (Pi Zero/1) as either.
# - v6T2 ranks above them: it adds Thumb-2, which an ARM11 like the arm1176 lacks. (A linear
#   order is a simplification: the arm1156t2 has Thumb-2 without the K extensions, but no Linux
#   board uses it, and every v7 core has both.)
# - "pre-v4" is what Tag_CPU_arch 0 means; any ARM Linux board runs it.
_A_PROFILE = ["pre-v4", "v4", "v4T", "v5T", "v5TE", "v5TEJ", "v6", ("v6KZ", "v6K"), "v6T2",
              "v7", "v8-A", "v8.1-A", "v8.2-A", "v8.3-A", "v9-A"]
_RANK = {name: rank for rank, names in enumerate(_A_PROFILE)
         for name in (names if isinstance(names, tuple) else (names,))}
# Microcontroller (M) and real-time (R) profiles: different instruction sets and exception
# models, so their code never runs on an A-profile (Linux) board, and vice versa.
_M_R_PROFILE = {"v6-M", "v6S-M", "v7E-M", "v8-R", "v8-M.baseline", "v8-M.mainline",
                "v8.1-M.mainline"}


def arm_arch_fits(arch: str, maximum: str) -> bool:
    """True when a CPU whose newest architecture is `maximum` runs code built for `arch`.

    An architecture this module does not know (e.g. a future Tag_CPU_arch) never fits: the gate
    can't show it is safe. An unknown `maximum` is a mistake in the target's definition and
    raises ValueError."""
    if maximum in _M_R_PROFILE:
        return arch == maximum  # no ordering across M/R variants is needed for Linux boards
    if maximum not in _RANK:
        raise ValueError(f"unknown ARM architecture {maximum!r}")
    return arch in _RANK and _RANK[arch] <= _RANK[maximum]


def check(files: Iterable[tuple[str, ElfInfo | None]], req: AbiRequirement) -> list[AbiProblem]:
    """Every way each ELF file (executables, libraries, object files alike) misses `req`.

    Entries whose info is None (not ELF) are skipped."""
    problems = []
    for path, info in files:
        if info is not None:
            problems += [AbiProblem(str(path), message) for message in _problems(info, req)]
    return problems


def _problems(info: ElfInfo, req: AbiRequirement) -> list[str]:
    # A wrong machine, word size or byte order makes every finer check meaningless.
    if info.machine != req.machine:
        return [f"machine {info.machine} but the target needs {req.machine}"]
    if info.bits != req.bits:
        return [f"{info.bits}-bit ELF on a {req.bits}-bit target"]
    if info.endian != req.endian:
        return [f"{info.endian}-endian ELF on a {req.endian}-endian target"]
    out = []
    if req.float_abi and info.float_abi and info.float_abi != req.float_abi:
        out.append(f"float ABI {info.float_abi}, the target needs {req.float_abi}")
    if req.arm_arch_max and info.arm_arch and not arm_arch_fits(info.arm_arch, req.arm_arch_max):
        out.append(_arch_message(info.arm_arch, req.arm_arch_max))
    if req.arm_arch_max and _RANK.get(req.arm_arch_max, 99) < _RANK["v6T2"]:  # ARMv6 or older CPU
        if info.arm_thumb_isa == 2:
            out.append(f"Thumb-2 code (Tag_THUMB_ISA_use: 2): the board's {req.arm_arch_max} CPU "
                       "runs Thumb-1 only")
        if info.arm_simd:
            out.append(f"NEON code (Tag_Advanced_SIMD_arch: {info.arm_simd}): the board's "
                       f"{req.arm_arch_max} CPU has no NEON")
    where = req.os or "the target"
    for prefix, needed, ships in (("GLIBC", info.glibc, req.glibc_max),
                                  ("GLIBCXX", info.glibcxx, req.glibcxx_max),
                                  ("CXXABI", info.cxxabi, req.cxxabi_max)):
        if ships and needed and glibc_tuple(needed) > glibc_tuple(ships):
            what = ships if prefix == "GLIBC" else f"{prefix}_{ships} (libstdc++)"
            out.append(f"needs {prefix}_{needed}, {where} ships {what}")
    if req.loader and info.kind == "executable" and info.interpreter not in (None, req.loader):
        out.append(f"program interpreter {info.interpreter}, {where}'s loader is {req.loader}")
    return out


def _arch_message(arch: str, maximum: str) -> str:
    if arch in _M_R_PROFILE or maximum in _M_R_PROFILE:
        return (f"ARM architecture {arch} does not run on the board's {maximum} "
                f"(A-profile and M/R-profile code are not interchangeable)")
    if arch not in _RANK:
        return f"unknown ARM architecture {arch}: cannot tell whether the board's {maximum} runs it"
    message = f"ARM architecture {arch} is newer than the board's {maximum}"
    if _RANK[maximum] < _RANK["v7"] <= _RANK[arch]:
        message += (f" (built for ARM{arch}: code like Debian armhf's dies with SIGILL on an "
                    f"ARMv6 board such as a Pi Zero/1)")
    else:
        message += " (the CPU would die with SIGILL on its newer instructions)"
    return message
