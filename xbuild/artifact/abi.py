"""The ABI gate: does each ELF artefact of a build run on the target board?

Catches the classic cross-compilation mistakes before anything is shipped: the wrong machine,
a 64-bit binary for a 32-bit OS, hard- vs soft-float, code for a newer ARM core than the board
has (ARMv7 Debian armhf code on an ARMv6 Pi Zero/1 dies with SIGILL), Thumb-2 or NEON code on an
ARMv6 board, and what the board's OS release lacks: a glibc or libstdc++ (GLIBCXX_, CXXABI_) newer
than the release's, or a program interpreter other than its loader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from xbuild.artifact.elf import ElfInfo
from xbuild.board.requirement import ARM_RANK, M_R_PROFILE, AbiRequirement, arm_arch_fits, glibc_tuple


@dataclass(frozen=True)
class AbiProblem:
    path: str
    message: str
    symbol: str = ""  # the undefined symbol, for the link check's problems (linkage.check)

    def __str__(self):
        return f"{self.path}: {self.message}"


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
    if req.arm_arch_max and ARM_RANK.get(req.arm_arch_max, 99) < ARM_RANK["v6T2"]:  # ARMv6 or older CPU
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
    if arch in M_R_PROFILE or maximum in M_R_PROFILE:
        return (f"ARM architecture {arch} does not run on the board's {maximum} "
                f"(A-profile and M/R-profile code are not interchangeable)")
    if arch not in ARM_RANK:
        return f"unknown ARM architecture {arch}: cannot tell whether the board's {maximum} runs it"
    message = f"ARM architecture {arch} is newer than the board's {maximum}"
    if ARM_RANK[maximum] < ARM_RANK["v7"] <= ARM_RANK[arch]:
        message += (f" (built for ARM{arch}: code like Debian armhf's dies with SIGILL on an "
                    f"ARMv6 board such as a Pi Zero/1)")
    else:
        message += " (the CPU would die with SIGILL on its newer instructions)"
    return message


def undefined_symbol(symbol: str) -> str | None:
    """What an undefined symbol means, where xbuild knows (the ABI gate's failure or the
    linker's): rpl_malloc and rpl_realloc are what autoconf's AC_FUNC_MALLOC/REALLOC rename
    malloc/realloc to when they decide the C library's returns NULL for 0 bytes."""
    m = re.fullmatch(r"rpl_(malloc|realloc)", symbol)
    if not m:
        return None
    fn = m.group(1)
    var, macro = f"ac_cv_func_{fn}_0_nonnull", f"AC_FUNC_{fn.upper()}"
    return (f"{symbol} is autoconf's stand-in for {fn}: configure's {macro} decided {var}=no, the "
            f"guess autoconf 2.69 makes when a cross build cannot run its {fn}(0) probe, and compiled "
            f"the project with -D{fn}={symbol}, which the project does not define. glibc's {fn}(0) "
            f"returns a pointer: xbuild's cross builds answer {var}=yes through CONFIG_SITE, unless "
            f"xbuild.toml's env sets CONFIG_SITE or {var} (env = {{ {var} = \"yes\" }} fixes it); "
            f"upstream, a configure generated by autoconf 2.70 or later guesses right for glibc, and "
            f"a configure.ac that keeps {macro} must also build its replacement ({fn}.c, AC_LIBOBJ)")
