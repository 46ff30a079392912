"""xbuild.artifact.abi: the ABI gate, on real binaries built here with the host and cross compilers."""

import dataclasses

import pytest

from xbuild.artifact.abi import AbiProblem, check
from xbuild.artifact.elf import read_elf
from xbuild.board import targets
from xbuild.board.requirement import AbiRequirement, arm_arch_fits, glibc_tuple

# Raspberry Pi Zero/1 on Raspberry Pi OS (bookworm): arm1176jzf-s, hard-float, glibc 2.36
PI_ZERO = AbiRequirement(machine="ARM", bits=32, endian="little", float_abi="hard",
                         arm_arch_max="v6KZ", glibc_max="2.36")
# The same CPU with a soft-float (armel) userland
PI_ZERO_ARMEL = dataclasses.replace(PI_ZERO, float_abi="soft")
# Pi 2 and later running a 32-bit (armhf) OS
PI_ARMHF = dataclasses.replace(PI_ZERO, arm_arch_max="v8-A")


@pytest.fixture
def built(build):
    """built(name, compiler, *flags) -> (path, ElfInfo) of the compiled test program."""
    def _built(name, compiler, *flags):
        path = build(name, compiler, *flags)
        return str(path), read_elf(path)
    return _built


@pytest.fixture
def armhf(built):
    return built("armhf", "arm-linux-gnueabihf-gcc")


@pytest.fixture
def armel_v6(built):
    return built("armel-v6", "arm-linux-gnueabi-gcc",
                 "-march=armv6", "-mfpu=vfp", "-mfloat-abi=softfp", "-marm")


def test_arm_arch_order():
    assert arm_arch_fits("v6", "v6KZ")
    assert arm_arch_fits("v6K", "v6KZ") and arm_arch_fits("v6KZ", "v6K")
    assert arm_arch_fits("v5TE", "v6KZ")
    assert not arm_arch_fits("v6T2", "v6KZ")  # Thumb-2: not on an arm1176
    assert not arm_arch_fits("v7", "v6KZ")
    assert arm_arch_fits("v7", "v8-A")
    assert not arm_arch_fits("v8-A", "v7")
    assert not arm_arch_fits("v8.2-A", "v8-A")
    assert not arm_arch_fits("v7E-M", "v7")   # M profile never on an A-profile board
    assert not arm_arch_fits("v8-R", "v9-A")
    assert not arm_arch_fits("unknown(99)", "v9-A")
    with pytest.raises(ValueError):
        arm_arch_fits("v7", "v6ZZ")


def test_armhf_v7_fails_on_armv6_board(armhf):
    path, info = armhf
    problems = check([(path, info)], PI_ZERO)
    assert len(problems) == 2
    assert {p.path for p in problems} == {path}
    text = str(problems[0])
    assert text.startswith(f"{path}: ARM architecture v7 is newer than the board's v6KZ")
    assert "SIGILL" in text
    # Debian armhf code is Thumb-2 (its default -mthumb), which an ARMv6 CPU lacks
    assert problems[1].message == ("Thumb-2 code (Tag_THUMB_ISA_use: 2): the board's v6KZ CPU "
                                   "runs Thumb-1 only")


def test_armhf_v7_passes_on_armv8_board(armhf):
    assert check([armhf], PI_ARMHF) == []


def test_armhf_object_file_is_checked_too(built):
    path, info = built("armhf.o", "arm-linux-gnueabihf-gcc", "-c")
    assert info.kind == "relocatable"
    problems = check([(path, info)], PI_ZERO)
    assert {p.path for p in problems} == {path}
    assert "v7" in problems[0].message


def test_armel_v6_passes_on_armv6_soft_board(armel_v6):
    assert check([armel_v6], PI_ZERO_ARMEL) == []


def test_armel_v6kz_passes_on_armv6_soft_board(built):
    pair = built("armel-v6kz", "arm-linux-gnueabi-gcc",
                 "-march=armv6kz", "-mfpu=vfp", "-mfloat-abi=softfp", "-marm")
    assert check([pair], PI_ZERO_ARMEL) == []


def test_float_abi_mismatch_fails(armel_v6):
    path, info = armel_v6
    problems = check([armel_v6], PI_ZERO)
    assert [p.message for p in problems] == ["float ABI soft, the target needs hard"]
    assert str(problems[0]) == f"{path}: float ABI soft, the target needs hard"


def test_float_abi_none_means_dont_care(armel_v6):
    assert check([armel_v6], dataclasses.replace(PI_ZERO, float_abi=None)) == []


def test_x86_64_fails_against_arm(built):
    path, info = built("x86", "gcc")
    problems = check([(path, info)], PI_ZERO)
    assert problems == [AbiProblem(path, "machine x86-64 but the target needs ARM")]


def test_aarch64_fails_32bit_arm(built):
    path, info = built("arm64", "aarch64-linux-gnu-gcc")
    problems = check([(path, info)], PI_ARMHF)
    assert len(problems) == 1
    assert problems[0].message == "machine AArch64 but the target needs ARM"


def test_64bit_elf_on_32bit_target(armhf):
    path, info = armhf
    wide = dataclasses.replace(info, bits=64)
    problems = check([(path, wide)], PI_ARMHF)
    assert [p.message for p in problems] == ["64-bit ELF on a 32-bit target"]


def test_glibc_lower_than_needed_fails_equal_passes(armhf):
    path, info = armhf
    assert info.glibc is not None
    assert check([armhf], dataclasses.replace(PI_ARMHF, glibc_max=info.glibc)) == []
    problems = check([armhf], dataclasses.replace(PI_ARMHF, glibc_max="2.24"))
    assert [p.message for p in problems] == [f"needs GLIBC_{info.glibc}, the target ships 2.24"]


def test_glibc_compared_numerically(armhf):
    # "2.4" sorts after "2.34" as text; as a version it is older
    path, info = armhf
    problems = check([(path, dataclasses.replace(info, glibc="2.34"))],
                     dataclasses.replace(PI_ARMHF, glibc_max="2.4"))
    assert [p.message for p in problems] == ["needs GLIBC_2.34, the target ships 2.4"]
    assert check([(path, dataclasses.replace(info, glibc="2.4"))],
                 dataclasses.replace(PI_ARMHF, glibc_max="2.34")) == []


def test_several_problems_and_files(armhf, armel_v6):
    req = dataclasses.replace(PI_ZERO_ARMEL, glibc_max="2.24")
    problems = check([armhf, ("README.md", None), armel_v6], req)
    by_file = {}
    for p in problems:
        by_file.setdefault(p.path, []).append(p.message)
    assert set(by_file) == {armhf[0], armel_v6[0]}  # the non-ELF entry is skipped
    assert len(by_file[armhf[0]]) == 4  # float ABI, architecture, Thumb-2, glibc
    assert by_file[armel_v6[0]] == [f"needs GLIBC_{armel_v6[1].glibc}, the target ships 2.24"]


# --- the board's OS release: glibc, libstdc++ and loader floors, ARMv6 rules --------------------

X86_64 = AbiRequirement(machine="x86-64", bits=64, endian="little", float_abi=None,
                        arm_arch_max=None, glibc_max=None, os="Test OS 1")


def test_glibcxx_above_the_release_is_refused(built):
    path, info = built("cxx", "g++", "-O2")
    assert check([(path, info)], dataclasses.replace(X86_64, glibcxx_max=info.glibcxx)) == []
    problems = check([(path, info)], dataclasses.replace(X86_64, glibcxx_max="3.4.20"))
    assert [str(p) for p in problems] == [
        f"{path}: needs GLIBCXX_{info.glibcxx}, Test OS 1 ships GLIBCXX_3.4.20 (libstdc++)"]


def test_cxxabi_above_the_release_is_refused(built):
    path, info = built("cxx", "g++", "-O2")
    problems = check([(path, info)], dataclasses.replace(X86_64, cxxabi_max="1.3"))
    assert [p.message for p in problems] == [
        f"needs CXXABI_{info.cxxabi}, Test OS 1 ships CXXABI_1.3 (libstdc++)"]


def test_a_c_program_passes_any_libstdcxx_floor(built):
    path, info = built("x86", "gcc", "-pie", "-fPIE")
    assert check([(path, info)], dataclasses.replace(X86_64, glibcxx_max="3.4", cxxabi_max="1.3")) == []


def test_bookworm_built_binary_refused_on_bullseye(armhf):
    """The host's cross GCC links against bookworm's glibc 2.36 (GLIBC_2.34's __libc_start_main):
    it fits rpi3 on bookworm, not on Raspberry Pi OS bullseye."""
    path, info = armhf
    assert glibc_tuple(info.glibc) >= (2, 34)
    rpi3 = targets.get("rpi3")
    assert check([armhf], rpi3.with_os("bookworm").abi) == []
    problems = check([armhf], rpi3.with_os("bullseye").abi)
    assert [p.message for p in problems] == [
        f"needs GLIBC_{info.glibc}, Raspberry Pi OS bullseye ships 2.31"]


def test_wrong_interpreter_is_refused(armhf):
    path, info = armhf
    req = dataclasses.replace(PI_ARMHF, loader="/lib/ld-linux.so.3", os="Debian armel-ish")
    assert [p.message for p in check([armhf], req)] == [
        "program interpreter /lib/ld-linux-armhf.so.3, Debian armel-ish's loader is /lib/ld-linux.so.3"]
    assert check([armhf], dataclasses.replace(req, loader="/lib/ld-linux-armhf.so.3")) == []


def test_shared_objects_and_static_programs_have_no_interpreter_to_check(built):
    lib = built("armhf.so", "arm-linux-gnueabihf-gcc", "-shared", "-fPIC")
    static = built("armhf-static", "arm-linux-gnueabihf-gcc", "-static")
    assert lib[1].kind == "shared-object" and static[1].interpreter is None
    req = dataclasses.replace(PI_ARMHF, loader="/lib/ld-linux.so.3", glibc_max=None)
    assert check([lib, static], req) == []


def test_neon_refused_on_armv6_board_only(built):
    path, info = built("armhf-neon", "arm-linux-gnueabihf-gcc", "-mfpu=neon")
    messages = [p.message for p in check([(path, info)], PI_ZERO)]
    assert f"NEON code (Tag_Advanced_SIMD_arch: {info.arm_simd}): the board's v6KZ CPU has no NEON" \
        in messages
    assert check([(path, info)], PI_ARMHF) == []  # a Pi 2/3 has NEON


def test_armv6_arm_code_passes_the_armv6_rules(armel_v6):
    path, info = armel_v6
    assert info.arm_thumb_isa != 2 and not info.arm_simd
    assert check([armel_v6], PI_ZERO_ARMEL) == []


def test_real_boards_carry_their_release_floors():
    rpi3 = targets.get("rpi3").with_os("bullseye")
    assert (rpi3.abi.glibc_max, rpi3.abi.glibcxx_max, rpi3.abi.cxxabi_max, rpi3.abi.loader) == (
        "2.31", "3.4.28", "1.3.12", "/lib/ld-linux-armhf.so.3")
    assert rpi3.abi.os == "Raspberry Pi OS bullseye"
    assert targets.get("arm64").abi.loader == "/lib/ld-linux-aarch64.so.1"
