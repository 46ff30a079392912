"""What a Go program says of its own build: the build information the Go linker writes into every
program (`go version -m` prints it), read here without running Go.

The ABI gate needs it on ARM: Go's linker writes no .ARM.attributes and no float-ABI flag, so a
pure-Go program built with GOARM=7 looks to the gate like any ARM file, and a cgo program linked
for a Pi Zero carries the C side's attributes (Tag_CPU_arch v6) even when its Go code is ARMv7
(docs/go.md): either dies with SIGILL on an arm1176. Only the recorded GOARM tells.

The layout (Go 1.18 on; src/debug/buildinfo): the .go.buildinfo section opens with a 32-byte header,
"\\xff Go buildinf:", the pointer size, a flags byte (bit 1: strings inline); then the Go version and
the module information, each a uvarint length and its bytes. The module information is wrapped
in two 16-byte sentinels; its lines are tab-separated: "path", "mod", "dep", "=>", "build KEY=VALUE"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from xbuild.artifact.elf import ElfError, read_section
from xbuild.board.requirement import ARM_RANK

SECTION = ".go.buildinfo"
MAGIC = b"\xff Go buildinf:"
MAX_SECTION = 1 << 20  # a program with thousands of dependencies holds a few hundred KiB
MAX_TEXT = 200  # a Go version string ("go1.27.3", "devel go1.28-abcdef ...")
_INLINE = 0x2
_SENTINEL = 16


@dataclass(frozen=True)
class GoBuild:
    version: str                                             # "go1.27.3"
    settings: dict[str, str] = field(default_factory=dict)   # "GOARCH" -> "arm", "GOARM" -> "6"...
    deps: tuple[tuple[str, str, str], ...] = ()               # (module, version, h1: sum)

    @property
    def goarm(self) -> int | None:
        """The GOARM the program was built for (6 of "6" or "6,softfloat"), when it says."""
        value = self.settings.get("GOARM", "")
        head = value.split(",", 1)[0]
        # ASCII digits, a few: str.isdigit() takes "²", and int() refuses 5,000 digits
        return int(head) if re.fullmatch(r"[0-9]{1,3}", head) else None


def read(path: Path) -> GoBuild | None:
    """The build information of the Go program at `path`; None for a file that is not a Go
    program (or one built before Go 1.18, whose layout is not inline). Raises ElfError for a
    corrupt file or section."""
    data = read_section(path, SECTION, MAX_SECTION)
    return parse(data) if data is not None else None


def parse(data: bytes) -> GoBuild | None:
    if len(data) < 32 or not data.startswith(MAGIC) or not data[15] & _INLINE:
        return None
    version, pos = _string(data, 32)
    modinfo, _ = _string(data, pos)
    if len(modinfo) >= 2 * _SENTINEL:
        modinfo = modinfo[_SENTINEL:-_SENTINEL]
    settings: dict[str, str] = {}
    deps = []
    for line in modinfo.decode(errors="replace").splitlines():
        parts = line.split("\t")
        if parts[0] == "build" and len(parts) >= 2 and "=" in parts[1]:
            key, value = parts[1].split("=", 1)
            settings[key] = value
        elif parts[0] == "dep" and len(parts) >= 3:
            deps.append((parts[1], parts[2], parts[3] if len(parts) > 3 else ""))
    # what the manifest keeps is bounded: a hostile section's "version" could be 1 MiB
    return GoBuild(version.decode(errors="replace")[:MAX_TEXT], settings, tuple(deps))


def _string(data: bytes, pos: int) -> tuple[bytes, int]:
    n = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ElfError(f"{SECTION}: truncated length")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    if pos + n > len(data):
        raise ElfError(f"{SECTION}: a string of {n} bytes runs past the section's end")
    return data[pos:pos + n], pos + n


def goarm_for(arm_arch_max: str) -> int:
    """The newest GOARM a CPU of that architecture runs: 5 before ARMv6, 6 for ARMv6 (the Pi
    Zero/1's arm1176, v6KZ; v6T2 too: Go's GOARM=7 code is ARMv7's), else 7."""
    rank = ARM_RANK.get(arm_arch_max)
    if rank is None:
        raise ValueError(f"not an A-profile ARM architecture: {arm_arch_max}")
    if rank < ARM_RANK["v6"]:
        return 5
    return 6 if rank < ARM_RANK["v7"] else 7


def to_json(build: GoBuild) -> dict:
    """What the manifest keeps of a Go program's build: its Go, GOARCH and GOARM (none off ARM)."""
    return {"version": build.version, "goarch": build.settings.get("GOARCH"), "goarm": build.goarm}


def problems(go: dict, machine: str, bits: int, arm_arch_max: str | None) -> list[str]:
    """Why a Go program (`go`: to_json's) does not run on a board with that CPU (the gate's
    words), if it does not."""
    if machine != "ARM" or bits != 32 or not arm_arch_max:
        return []
    most, built, version = goarm_for(arm_arch_max), go.get("goarm"), go.get("version")
    if built is None:
        return [f"a Go program ({version}) that does not say which GOARM it was built for: "
                f"the board's {arm_arch_max} CPU runs GOARM={most} or lower"]
    if built > most:
        return [f"Go code built for GOARM={built} ({version}): the board's {arm_arch_max} CPU "
                f"runs GOARM={most} or lower (it would die with SIGILL); build with GOARM={most}"]
    return []
