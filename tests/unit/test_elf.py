"""xbuild.artifact.elf on real binaries, built here with the host and cross compilers."""

import json
import struct

import pytest

from xbuild.artifact.elf import ElfError, ElfInfo, is_elf, read_elf
from xbuild.board.requirement import glibc_tuple


def e_type(path):
    """The raw e_type of a little-endian ELF file."""
    return struct.unpack_from("<H", path.read_bytes(), 16)[0]


def test_glibc_tuple_compares_numerically():
    assert glibc_tuple("2.34") == (2, 34)
    assert glibc_tuple("GLIBC_2.2.5") == (2, 2, 5)
    assert glibc_tuple("2.34") > glibc_tuple("2.4")
    assert glibc_tuple("2.2.5") < glibc_tuple("2.3")


def test_x86_64_pie_executable(build):
    path = build("x86", "gcc", "-pie", "-fPIE")
    info = read_elf(path)
    assert (info.machine, info.bits, info.endian) == ("x86-64", 64, "little")
    assert e_type(path) == 3  # ET_DYN: a PIE, told from a library by its PT_INTERP
    assert info.kind == "executable"
    assert info.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert info.static is False
    assert info.float_abi is None and info.arm_arch is None
    assert glibc_tuple(info.glibc) >= (2, 25)
    assert is_elf(path)


def test_static_executable(build):
    info = read_elf(build("x86-static", "gcc", "-static"))
    assert info.static is True
    assert info.interpreter is None
    assert info.kind == "executable"
    assert info.glibc is None  # no .gnu.version_r: nothing is resolved at run time


def test_shared_object(build):
    path = build("libhello.so", "gcc", "-shared", "-fPIC")
    info = read_elf(path)
    assert e_type(path) == 3
    assert info.kind == "shared-object"
    assert info.interpreter is None
    assert info.static is False
    assert glibc_tuple(info.glibc) >= (2, 25)


def test_relocatable_object(build):
    info = read_elf(build("hello.o", "gcc", "-c"))
    assert info.kind == "relocatable"
    assert info.machine == "x86-64"
    assert info.interpreter is None


def test_armhf_executable(build):
    info = read_elf(build("armhf", "arm-linux-gnueabihf-gcc"))
    assert (info.machine, info.bits, info.endian) == ("ARM", 32, "little")
    assert info.float_abi == "hard"
    assert info.arm_arch == "v7"  # Debian armhf's default: -march=armv7-a
    assert info.interpreter == "/lib/ld-linux-armhf.so.3"
    assert info.kind == "executable"
    assert glibc_tuple(info.glibc) >= (2, 25)


def test_armhf_cortex_a53(build):
    info = read_elf(build("armhf-a53", "arm-linux-gnueabihf-gcc",
                          "-mcpu=cortex-a53", "-mfpu=neon-fp-armv8"))
    assert info.arm_arch == "v8-A"
    assert info.float_abi == "hard"


def test_armhf_object_float_abi_from_attributes(build):
    # object files have no float-ABI e_flags; .ARM.attributes Tag_ABI_VFP_args says "hard"
    path = build("armhf.o", "arm-linux-gnueabihf-gcc", "-c")
    flags = struct.unpack_from("<I", path.read_bytes(), 36)[0]
    assert flags & 0x600 == 0
    info = read_elf(path)
    assert info.kind == "relocatable"
    assert info.float_abi == "hard"
    assert info.arm_arch == "v7"


def test_armel_object_float_abi_defaults_to_soft(build):
    info = read_elf(build("armel.o", "arm-linux-gnueabi-gcc", "-c"))
    assert info.float_abi == "soft"  # no Tag_ABI_VFP_args: its default, base (soft) AAPCS
    assert info.arm_arch == "v5TE"   # Debian armel's default


def test_armel_armv6_softfp(build):
    info = read_elf(build("armel-v6", "arm-linux-gnueabi-gcc",
                          "-march=armv6", "-mfpu=vfp", "-mfloat-abi=softfp", "-marm"))
    assert (info.machine, info.bits) == ("ARM", 32)
    assert info.float_abi == "soft"  # softfp uses VFP inside, but passes floats in core registers
    assert info.arm_arch == "v6"
    assert info.interpreter == "/lib/ld-linux.so.3"


def test_armel_armv6kz(build):
    info = read_elf(build("armel-v6kz", "arm-linux-gnueabi-gcc",
                          "-march=armv6kz", "-mfpu=vfp", "-mfloat-abi=softfp", "-marm"))
    assert info.arm_arch == "v6KZ"
    assert info.float_abi == "soft"


def test_aarch64_executable(build):
    info = read_elf(build("arm64", "aarch64-linux-gnu-gcc"))
    assert (info.machine, info.bits, info.endian) == ("AArch64", 64, "little")
    assert info.float_abi is None and info.arm_arch is None
    assert info.interpreter == "/lib/ld-linux-aarch64.so.1"
    assert glibc_tuple(info.glibc) >= (2, 25)


def test_to_json_is_plain(build):
    info = read_elf(build("armhf", "arm-linux-gnueabihf-gcc"))
    data = json.loads(json.dumps(info.to_json()))
    assert data["machine"] == "ARM" and data["float_abi"] == "hard" and data["static"] is False
    assert ElfInfo(**data) == info


def test_big_endian_header(tmp_path):
    # no big-endian cross compiler on the host: a bare ELF64 header for ppc64 (no tables)
    ident = b"\x7fELF" + bytes([2, 2, 1]) + bytes(9)
    header = ident + struct.pack(">HHIQQQIHHHHHH", 2, 21, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)
    path = tmp_path / "ppc64"
    path.write_bytes(header)
    info = read_elf(path)
    assert (info.machine, info.bits, info.endian, info.kind) == ("PowerPC64", 64, "big",
                                                                 "executable")
    assert info.static is True and info.glibc is None


def test_not_elf(tmp_path):
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert read_elf(script) is None
    assert read_elf(empty) is None
    assert not is_elf(script)
    assert not is_elf(tmp_path)  # a directory


@pytest.mark.parametrize("keep", [10, 40, 200])
def test_truncated_elf_raises(build, tmp_path, keep):
    whole = build("x86", "gcc", "-pie", "-fPIE").read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(whole[:keep])
    assert is_elf(cut)
    with pytest.raises(ElfError):
        read_elf(cut)
    assert issubclass(ElfError, ValueError)


def test_section_table_past_end_raises(build, tmp_path):
    data = bytearray(build("x86", "gcc", "-pie", "-fPIE").read_bytes())
    struct.pack_into("<Q", data, 40, len(data) + 4096)  # e_shoff beyond the file
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    with pytest.raises(ElfError):
        read_elf(bad)


# --- what the OS release gate reads: libstdc++ versions, sonames, ARM Thumb/NEON use ----------

def _readelf(*args) -> str:
    import shutil
    import subprocess
    if shutil.which("readelf") is None:
        pytest.skip("readelf not found: apt-get install binutils")
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True, text=True).stdout


def _newest(text: str, prefix: str) -> str:
    import re
    found = set(re.findall(rf"\b{prefix}_(\d+(?:\.\d+)+)\b", text))
    return max(found, key=glibc_tuple)


def test_cxx_versions_match_readelf(build):
    """The newest GLIBCXX_/CXXABI_ needed, as binutils' readelf lists them in .gnu.version_r."""
    path = build("cxx", "g++", "-O2")
    info = read_elf(path)
    versions = _readelf("-V", str(path))
    assert info.glibcxx == _newest(versions, "GLIBCXX")
    assert info.cxxabi == _newest(versions, "CXXABI")
    assert info.glibc == _newest(versions, "GLIBC")
    assert glibc_tuple(info.glibcxx) >= (3, 4, 21)  # std::string of the C++11 ABI


def test_c_program_needs_no_libstdcxx(build):
    info = read_elf(build("x86", "gcc", "-pie", "-fPIE"))
    assert info.glibcxx is None and info.cxxabi is None
    assert "libstdc++.so.6" not in info.needed


def test_needed_sonames_in_readelf_order(build):
    import re
    path = build("cxx", "g++", "-O2")
    expected = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _readelf("-d", str(path)))
    info = read_elf(path)
    assert info.needed == tuple(expected)
    assert "libstdc++.so.6" in info.needed and "libc.so.6" in info.needed


def test_static_binary_needs_nothing(build):
    info = read_elf(build("x86-static", "gcc", "-static"))
    assert info.needed == () and info.glibcxx is None


def test_armhf_thumb2_and_no_neon(build):
    """Debian's armhf GCC defaults to Thumb-2 with VFPv3-D16: Thumb-2 code, no NEON."""
    info = read_elf(build("armhf", "arm-linux-gnueabihf-gcc"))
    assert info.arm_thumb_isa == 2
    assert info.arm_simd == 0
    assert info.needed == ("libc.so.6",)


def test_armhf_neon_is_seen(build):
    info = read_elf(build("armhf-neon", "arm-linux-gnueabihf-gcc", "-mfpu=neon"))
    assert info.arm_simd >= 1


def test_armel_armv6_arm_code_is_thumb1_at_most(build):
    info = read_elf(build("armel-v6", "arm-linux-gnueabi-gcc",
                          "-march=armv6", "-mfpu=vfp", "-mfloat-abi=softfp", "-marm"))
    assert info.arm_thumb_isa in (0, 1) and info.arm_simd == 0


def test_non_arm_has_no_arm_attributes(build):
    info = read_elf(build("x86", "gcc", "-pie", "-fPIE"))
    assert info.arm_thumb_isa is None and info.arm_simd is None


def test_float_abi_from_header_when_the_attributes_are_left_out(build, tmp_path):
    """zig's lld leaves Tag_ABI_VFP_args out: the ELF header's hard-float flag tells instead."""
    import shutil
    import subprocess
    objcopy = "arm-linux-gnueabihf-objcopy"
    if shutil.which(objcopy) is None:
        pytest.skip(f"{objcopy} not found: apt-get install binutils-arm-linux-gnueabihf")
    stripped = tmp_path / "no-attributes"
    subprocess.run([objcopy, "--remove-section=.ARM.attributes",
                    str(build("armhf", "arm-linux-gnueabihf-gcc")), str(stripped)], check=True)
    info = read_elf(stripped)
    assert info.arm_arch is None and info.arm_thumb_isa is None  # no attributes left
    assert info.float_abi == "hard"


def test_float_abi_tag_wins_over_the_header(build, tmp_path):
    """A file whose Tag_ABI_VFP_args says hard-float but whose header flags say soft (a linker
    that sets the flags wrong) is hard-float: the tag is what the compiler recorded."""
    path = tmp_path / "flags-soft"
    data = bytearray(build("armhf", "arm-linux-gnueabihf-gcc").read_bytes())
    (flags,) = struct.unpack_from("<I", data, 36)
    struct.pack_into("<I", data, 36, (flags & ~0x400) | 0x200)  # EF_ARM_ABI_FLOAT_SOFT
    path.write_bytes(bytes(data))
    assert read_elf(path).float_abi == "hard"
