"""A small pure-Python ELF reader: just what the ABI gate needs to know about an artefact.

It reads the ELF header, the program headers (PT_INTERP, PT_DYNAMIC), the section headers with
their names, `.ARM.attributes` (float ABI, CPU architecture, Thumb and Advanced SIMD use),
`.gnu.version_r` (the newest GLIBC_, GLIBCXX_ and CXXABI_ symbol versions needed), `.dynamic`
(the sonames needed, DT_NEEDED, and its own, DT_SONAME) and, on request, `.dynsym` (the symbols a
file leaves for others to define and those it defines for others: `read_symbols`). Only the standard library is used,
so the check runs anywhere xbuild runs, without the target's binutils.
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
from dataclasses import dataclass

from xbuild.board.requirement import MACHINES, glibc_tuple


class ElfError(ValueError):
    """The file starts with the ELF magic but is truncated or corrupt."""


@dataclass(frozen=True)
class ElfInfo:
    machine: str             # "ARM", "AArch64", "x86-64", ... or f"EM_{n}"
    bits: int                # 32 or 64
    endian: str              # "little" | "big"
    kind: str                # "executable" | "shared-object" | "relocatable" | "core" | "other"
    float_abi: str | None    # ARM only: "hard" | "soft"
    arm_arch: str | None     # ARM only: Tag_CPU_arch as a name, e.g. "v6KZ", "v7", "v8-A"
    glibc: str | None        # newest GLIBC_x.y[.z] needed, e.g. "2.34"
    interpreter: str | None  # PT_INTERP contents, e.g. "/lib/ld-linux-armhf.so.3"
    static: bool             # no PT_DYNAMIC
    glibcxx: str | None = None         # newest GLIBCXX_x.y.z needed (libstdc++), e.g. "3.4.30"
    cxxabi: str | None = None          # newest CXXABI_x.y.z needed (libstdc++), e.g. "1.3.13"
    needed: tuple[str, ...] = ()       # DT_NEEDED sonames, e.g. ("libssl.so.3", "libc.so.6")
    arm_thumb_isa: int | None = None   # ARM only: Tag_THUMB_ISA_use (1 Thumb-1, 2 Thumb-2)
    arm_simd: int | None = None        # ARM only: Tag_Advanced_SIMD_arch (0 none, 1+ NEON)
    soname: str | None = None          # DT_SONAME of a shared library, e.g. "libi2c.so.0"

    def __post_init__(self):  # read back from JSON, `needed` is a list
        object.__setattr__(self, "needed", tuple(self.needed))

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


MAGIC = b"\x7fELF"

# Tag_CPU_arch values, numbered as in the ARM ABI addenda ("Addenda to, and Errata in, the ABI").
ARM_ARCHS = ["pre-v4", "v4", "v4T", "v5T", "v5TE", "v5TEJ", "v6", "v6KZ", "v6T2", "v6K", "v7",
             "v6-M", "v6S-M", "v7E-M", "v8-A", "v8-R", "v8-M.baseline", "v8-M.mainline",
             "v8.1-A", "v8.2-A", "v8.3-A", "v8.1-M.mainline", "v9-A"]

ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
PT_DYNAMIC, PT_INTERP = 2, 3
SHT_DYNAMIC, SHT_DYNSYM, DT_NEEDED, DT_SONAME = 6, 11, 1, 14
SHN_UNDEF = 0
STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE = 1, 2, 10
STV_DEFAULT, STV_PROTECTED = 0, 3
STT_SECTION, STT_FILE = 3, 4
# .ARM.attributes tags (ARM "Addenda to, and Errata in, the ABI")
TAG_CPU_ARCH, TAG_THUMB_ISA_USE, TAG_ADVANCED_SIMD_ARCH, TAG_ABI_VFP_ARGS = 6, 9, 12, 28
SHT_GNU_VERNEED = 0x6FFFFFFE
SHT_ARM_ATTRIBUTES = 0x70000003
EF_ARM_ABI_FLOAT_SOFT, EF_ARM_ABI_FLOAT_HARD = 0x200, 0x400

# the symbol-version prefixes whose newest needed version the gate compares with the release's
_VERSION_NAME = re.compile(r"(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)\Z")

# struct layouts without the byte-order prefix, per class (32/64 bits)
_EHDR = {32: "HHIIIIIHHHHHH", 64: "HHIQQQIHHHHHH"}    # from e_type on (after e_ident)
_PHDR = {32: "IIIIIIII", 64: "IIQQQQQQ"}
_SHDR = {32: "IIIIIIIIII", 64: "IIQQQQIIQQ"}
# Elf_Sym as (st_name, st_info, st_other, st_shndx) plus padding where the value and size lie
_SYM = {32: "I8xBBH", 64: "IBBH16x"}
# .dynsym and .dynstr are read whole: a bound far above any real library's (libLLVM's ~100,000
# symbols take a few MB), so a crafted file cannot make the gate hold gigabytes in memory.
MAX_SYMBOL_TABLE = 64 << 20


@dataclass(frozen=True)
class DynamicSymbols:
    """What the dynamic linker resolves for a file: the names it needs from others (undefined,
    bound GLOBAL: a weak one may stay unresolved) and the names it offers (defined, GLOBAL, WEAK
    or GNU_UNIQUE, of default or protected visibility). Names without their symbol versions."""
    undefined: frozenset[str]
    defined: frozenset[str]


@dataclass(frozen=True)
class _Section:
    name: str
    type: int
    offset: int
    size: int
    link: int
    info: int


def is_elf(path) -> bool:
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(4) == MAGIC


def read_elf(path) -> ElfInfo | None:
    """Describe the ELF file at `path`; None when it is not ELF at all.

    Raises ElfError for a truncated or corrupt ELF file, OSError when it cannot be read."""
    with open(path, "rb") as f:
        if f.read(4) != MAGIC:
            return None
        return _Reader(f).info()


def read_symbols(path) -> DynamicSymbols:
    """The dynamic symbols of the ELF file at `path` (empty for one without .dynsym: a static
    program, an object file). Raises ElfError for a file that is not ELF, truncated or corrupt."""
    with open(path, "rb") as f:
        if f.read(4) != MAGIC:
            raise ElfError("not an ELF file")
        return _Reader(f).symbols()


def read_section(path, name: str, limit: int) -> bytes | None:
    """The contents of the section called `name` in the ELF file at `path` (Go's .go.buildinfo,
    for one); None when the file is not ELF or has no such section, or the section holds nothing
    in the file. Raises ElfError for a truncated or corrupt file, or a section over `limit` bytes."""
    with open(path, "rb") as f:
        if f.read(4) != MAGIC:
            return None
        return _Reader(f).section(name, limit)


class _Reader:
    def __init__(self, f):
        self.f = f
        self.size = os.fstat(f.fileno()).st_size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ElfError(f"truncated ELF: wants bytes {offset}..{offset + length}, "
                           f"file has {self.size}")
        self.f.seek(offset)
        return self.f.read(length)

    def unpack(self, fmt: str, offset: int) -> tuple:
        fmt = self.order + fmt
        return struct.unpack(fmt, self.read(offset, struct.calcsize(fmt)))

    def header(self) -> tuple:
        """The ELF header's fields from e_type on; sets the class and byte order."""
        ident = self.read(0, 16)
        classes, orders = {1: 32, 2: 64}, {1: ("<", "little"), 2: (">", "big")}
        if ident[4] not in classes or ident[5] not in orders:
            raise ElfError(f"bad ELF class/data bytes {ident[4]}/{ident[5]}")
        self.bits = classes[ident[4]]
        self.order, self.endian = orders[ident[5]]
        return self.unpack(_EHDR[self.bits], 16)

    def info(self) -> ElfInfo:
        (e_type, e_machine, _version, _entry, phoff, shoff, flags, _ehsize, phentsize, phnum,
         shentsize, shnum, shstrndx) = self.header()

        segments = self._segments(phoff, phentsize, phnum)
        types = [p_type for p_type, _, _ in segments]
        interpreter = None
        if PT_INTERP in types:
            _, offset, filesz = segments[types.index(PT_INTERP)]
            interpreter = self.read(offset, filesz).split(b"\0", 1)[0].decode(errors="replace")
        sections = self._sections(shoff, shentsize, shnum, shstrndx)

        kind = {ET_REL: "relocatable", ET_EXEC: "executable", ET_CORE: "core"}.get(e_type, "other")
        if e_type == ET_DYN:  # a PIE is ET_DYN too; only it asks for a program interpreter
            kind = "executable" if interpreter is not None else "shared-object"

        float_abi = arm_arch = thumb = simd = None
        machine = MACHINES.get(e_machine, f"EM_{e_machine}")
        if machine == "ARM":
            attrs = self._arm_attributes(sections)
            float_abi = _float_abi(flags, attrs)
            # The ABI makes these tags numbers, and _parse_attributes reads them as numbers.
            numbers = {tag: value for tag, value in attrs.items() if isinstance(value, int)}
            if TAG_CPU_ARCH in numbers:
                n = numbers[TAG_CPU_ARCH]
                arm_arch = ARM_ARCHS[n] if n < len(ARM_ARCHS) else f"unknown({n})"
            if attrs:  # an absent tag means 0 (not used)
                thumb = numbers.get(TAG_THUMB_ISA_USE, 0)
                simd = numbers.get(TAG_ADVANCED_SIMD_ARCH, 0)
        versions = self._versions(sections)
        needed, soname = self._dynamic(sections)
        return ElfInfo(machine=machine, bits=self.bits, endian=self.endian, kind=kind,
                       float_abi=float_abi, arm_arch=arm_arch, glibc=versions.get("GLIBC"),
                       interpreter=interpreter, static=PT_DYNAMIC not in types,
                       glibcxx=versions.get("GLIBCXX"), cxxabi=versions.get("CXXABI"),
                       needed=needed, arm_thumb_isa=thumb, arm_simd=simd, soname=soname)

    def symbols(self) -> DynamicSymbols:
        h = self.header()
        sections = self._sections(h[5], h[10], h[11], h[12])  # e_shoff, e_shentsize, e_shnum, e_shstrndx
        return self._dynsym(sections)

    def section(self, name: str, limit: int) -> bytes | None:
        h = self.header()
        sections = self._sections(h[5], h[10], h[11], h[12])  # e_shoff, e_shentsize, e_shnum, e_shstrndx
        sec = next((s for s in sections if s.name == name), None)
        if sec is None or sec.type == 8:  # 8 = SHT_NOBITS: nothing in the file
            return None
        if sec.size > limit:
            raise ElfError(f"section {name} is {sec.size} bytes, more than the {limit} it may hold")
        return self._contents(sec)

    # --- headers ---------------------------------------------------------------------------
    def _segments(self, phoff: int, phentsize: int, phnum: int) -> list[tuple[int, int, int]]:
        """(p_type, p_offset, p_filesz) of each program header."""
        if phoff == 0 or phnum == 0:
            return []
        if phentsize < struct.calcsize(_PHDR[self.bits]):
            raise ElfError(f"bad e_phentsize {phentsize}")
        out = []
        for i in range(phnum):
            h = self.unpack(_PHDR[self.bits], phoff + i * phentsize)
            # the two layouts order the fields differently (p_flags moved up in ELF64)
            out.append((h[0], h[1], h[4]) if self.bits == 32 else (h[0], h[2], h[5]))
        return out

    def _sections(self, shoff: int, shentsize: int, shnum: int, shstrndx: int) -> list[_Section]:
        if shoff == 0:
            return []
        if shentsize < struct.calcsize(_SHDR[self.bits]):
            raise ElfError(f"bad e_shentsize {shentsize}")
        first = self.unpack(_SHDR[self.bits], shoff)
        # more than 0xff00 sections: the real count and name-table index live in section 0
        if shnum == 0:
            shnum = first[5]
        if shstrndx == 0xFFFF:
            shstrndx = first[6]
        if shoff + shnum * shentsize > self.size:
            raise ElfError(f"truncated ELF: {shnum} section headers run past the end of the file")
        raw = [self.unpack(_SHDR[self.bits], shoff + i * shentsize) for i in range(shnum)]
        names = b""
        if 0 < shstrndx < shnum and raw[shstrndx][1] != 8:  # 8 = SHT_NOBITS: nothing in the file
            names = self.read(raw[shstrndx][4], raw[shstrndx][5])
        return [_Section(name=_cstr(names, h[0]), type=h[1], offset=h[4], size=h[5], link=h[6],
                         info=h[7]) for h in raw]

    def _contents(self, section: _Section) -> bytes:
        return self.read(section.offset, section.size)

    # --- .ARM.attributes -------------------------------------------------------------------
    def _arm_attributes(self, sections: list[_Section]) -> dict[int, int | str]:
        """The File-scope attributes of the "aeabi" vendor subsection, tag -> value."""
        sec = next((s for s in sections
                    if s.type == SHT_ARM_ATTRIBUTES or s.name == ".ARM.attributes"), None)
        if sec is None:
            return {}
        data = self._contents(sec)
        if data[:1] != b"A":  # format version 'A' is the only one there is
            return {}
        attrs: dict[int, int | str] = {}
        pos = 1
        try:  # a malformed subsection ends the walk (IndexError) with what was read so far
            while pos + 4 <= len(data):
                (length,) = struct.unpack_from(self.order + "I", data, pos)
                end = pos + length
                if length < 5 or end > len(data):
                    break
                vendor, body = _read_cstr(data, pos + 4)
                while vendor == "aeabi" and body < end:
                    tag, p = _uleb(data, body)
                    if p + 4 > end:
                        break
                    (size,) = struct.unpack_from(self.order + "I", data, p)
                    if size < 5 or body + size > end:
                        break
                    if tag == 1:  # File scope; Section (2) and Symbol (3) scopes are ignored
                        attrs.update(_parse_attributes(data, p + 4, body + size))
                    body += size
                pos = end
        except IndexError:
            pass
        return attrs

    # --- .dynamic ---------------------------------------------------------------------------
    def _dynamic(self, sections: list[_Section]) -> tuple[tuple[str, ...], str | None]:
        """The DT_NEEDED sonames, in the order the loader looks them up, and the file's own
        DT_SONAME (the name ldconfig links it by, and the one programs linked to it need)."""
        sec = next((s for s in sections if s.type == SHT_DYNAMIC), None)
        if sec is None or not 0 < sec.link < len(sections):
            return (), None
        data, strings = self._contents(sec), self._contents(sections[sec.link])
        fmt = self.order + ("iI" if self.bits == 32 else "qQ")
        step = struct.calcsize(fmt)
        out, soname = [], None
        for pos in range(0, len(data) - step + 1, step):
            tag, value = struct.unpack_from(fmt, data, pos)
            if tag == 0:  # DT_NULL ends the table
                break
            if tag == DT_NEEDED:
                out.append(_cstr(strings, value))
            elif tag == DT_SONAME:
                soname = _cstr(strings, value)
        return tuple(out), soname

    # --- .dynsym ----------------------------------------------------------------------------
    def _dynsym(self, sections: list[_Section]) -> DynamicSymbols:
        sec = next((s for s in sections if s.type == SHT_DYNSYM), None)
        if sec is None or not 0 < sec.link < len(sections):
            return DynamicSymbols(frozenset(), frozenset())
        if max(sec.size, sections[sec.link].size) > MAX_SYMBOL_TABLE:
            raise ElfError(f"dynamic symbol table larger than {MAX_SYMBOL_TABLE >> 20} MB")
        data, strings = self._contents(sec), self._contents(sections[sec.link])
        fmt = self.order + _SYM[self.bits]
        step = struct.calcsize(fmt)
        undefined, defined = set(), set()
        for name, info, other, shndx in struct.iter_unpack(fmt, data[:len(data) - len(data) % step]):
            bind, kind = info >> 4, info & 0xF
            if name == 0 or kind in (STT_SECTION, STT_FILE):
                continue
            if shndx == SHN_UNDEF:
                if bind == STB_GLOBAL:
                    undefined.add(_cstr(strings, name))
            elif bind in (STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE) and \
                    other & 3 in (STV_DEFAULT, STV_PROTECTED):
                defined.add(_cstr(strings, name))
        return DynamicSymbols(frozenset(undefined), frozenset(defined))

    # --- .gnu.version_r --------------------------------------------------------------------
    def _versions(self, sections: list[_Section]) -> dict[str, str]:
        """The newest version needed per prefix, {"GLIBC": "2.34", "GLIBCXX": "3.4.30",
        "CXXABI": "1.3.13"}, among the versions the file needs (Elf_Verneed/Elf_Vernaux)."""
        best: dict[str, str] = {}
        for sec in sections:
            if sec.type != SHT_GNU_VERNEED or not 0 < sec.link < len(sections):
                continue
            data, strings = self._contents(sec), self._contents(sections[sec.link])
            pos = 0
            # sh_info is the number of Elf_Verneed entries; bounding the walk by it guards
            # against vn_next loops in a corrupt file
            for _ in range(sec.info):
                if pos + 16 > len(data):
                    raise ElfError("truncated .gnu.version_r")
                _ver, cnt, _file, aux, nxt = struct.unpack_from(self.order + "HHIII", data, pos)
                apos = pos + aux
                for _ in range(cnt):
                    if apos + 16 > len(data):
                        raise ElfError("truncated .gnu.version_r")
                    _hash, _flags, _other, name, anext = struct.unpack_from(
                        self.order + "IHHII", data, apos)
                    # GLIBC_PRIVATE, CXXABI_TM_1 ...: not release versions
                    m = _VERSION_NAME.match(_cstr(strings, name))
                    if m and (m[1] not in best or glibc_tuple(m[2]) > glibc_tuple(best[m[1]])):
                        best[m[1]] = m[2]
                    if anext == 0:
                        break
                    apos += anext
                if nxt == 0:
                    break
                pos += nxt
        return best


def _float_abi(flags: int, attrs: dict) -> str | None:
    """Tag_ABI_VFP_args when the file has it; where the linker leaves it out (zig's lld does), the
    ELF header's float-ABI flags, which only mean that from EABI version 5 on (earlier, 0x200 was
    another flag); with neither, the tag's default: 0, arguments in core registers (soft)."""
    if TAG_ABI_VFP_ARGS in attrs:
        return {0: "soft", 1: "hard"}.get(attrs[TAG_ABI_VFP_ARGS])  # 2/3: toolchain-specific/either
    if flags >> 24 >= 5:
        if flags & EF_ARM_ABI_FLOAT_HARD:
            return "hard"
        if flags & EF_ARM_ABI_FLOAT_SOFT:
            return "soft"
    return "soft" if attrs else None


def _parse_attributes(data: bytes, pos: int, end: int) -> dict[int, int | str]:
    """ULEB128 tag/value pairs. The ABI fixes each tag's type: 4, 5 (CPU names) and odd tags
    above 32 are NUL-terminated strings, 32 (Tag_compatibility) is a ULEB128 flag followed by a
    string, all others ULEB128. A malformed tail ends the parse with what was read so far."""
    out: dict[int, int | str] = {}
    try:
        while pos < end:
            tag, pos = _uleb(data, pos)
            if tag == 32:
                _flag, pos = _uleb(data, pos)
                out[tag], pos = _read_cstr(data, pos)
            elif tag in (4, 5) or (tag > 32 and tag % 2):
                out[tag], pos = _read_cstr(data, pos)
            else:
                out[tag], pos = _uleb(data, pos)
    except IndexError:
        pass
    return out


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]  # IndexError past the end: the caller stops there
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _read_cstr(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\0", pos)
    if end < 0:
        raise IndexError("unterminated string")
    return data[pos:end].decode(errors="replace"), end + 1


def _cstr(data: bytes, pos: int) -> str:
    if pos >= len(data):
        return ""
    end = data.find(b"\0", pos)
    return data[pos:end if end >= 0 else len(data)].decode(errors="replace")
