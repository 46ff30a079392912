"""What a board and its OS release ask of every artifact: the ELF machine, word size and byte
order, the float ABI, the newest ARM architecture its CPU runs, and the release's glibc,
libstdc++ and loader. Board data: the ABI gate (artifact/abi.py) checks artifacts against it."""

from __future__ import annotations

from dataclasses import dataclass

# The ELF e_machine numbers xbuild reads, and the names a board file uses for them.
MACHINES = {3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "S/390", 40: "ARM",
            62: "x86-64", 183: "AArch64", 243: "RISC-V"}


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
ARM_RANK = {name: rank for rank, names in enumerate(_A_PROFILE)
         for name in (names if isinstance(names, tuple) else (names,))}
# Microcontroller (M) and real-time (R) profiles: different instruction sets and exception
# models, so their code never runs on an A-profile (Linux) board, and vice versa.
M_R_PROFILE = {"v6-M", "v6S-M", "v7E-M", "v8-R", "v8-M.baseline", "v8-M.mainline",
                "v8.1-M.mainline"}


def arm_arch_fits(arch: str, maximum: str) -> bool:
    """True when a CPU whose newest architecture is `maximum` runs code built for `arch`.

    An architecture xbuild does not know (e.g. a future Tag_CPU_arch) never fits: the gate
    can't show it is safe. An unknown `maximum` is a mistake in the target's definition and
    raises ValueError."""
    if maximum in M_R_PROFILE:
        return arch == maximum  # no ordering across M/R variants is needed for Linux boards
    if maximum not in ARM_RANK:
        raise ValueError(f"unknown ARM architecture {maximum!r}")
    return arch in ARM_RANK and ARM_RANK[arch] <= ARM_RANK[maximum]


def glibc_tuple(version: str) -> tuple[int, ...]:
    """"GLIBC_2.34" or "2.34" -> (2, 34), so that versions compare numerically ("2.34" > "2.4").
    Works for any symbol version prefix ("GLIBCXX_3.4.30", "CXXABI_1.3.13")."""
    return tuple(int(part) for part in version.rsplit("_", 1)[-1].split("."))
