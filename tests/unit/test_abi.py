"""xbuild.abi: the ABI gate, on real binaries built here with the host and cross compilers."""

import dataclasses

import pytest

from xbuild.abi import AbiProblem, AbiRequirement, arm_arch_fits, check
from xbuild.elf import read_elf

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
    assert len(problems) == 1
    assert problems[0].path == path
    text = str(problems[0])
    assert text.startswith(f"{path}: ARM architecture v7 is newer than the board's v6KZ")
    assert "SIGILL" in text


def test_armhf_v7_passes_on_armv8_board(armhf):
    assert check([armhf], PI_ARMHF) == []


def test_armhf_object_file_is_checked_too(built):
    path, info = built("armhf.o", "arm-linux-gnueabihf-gcc", "-c")
    assert info.kind == "relocatable"
    problems = check([(path, info)], PI_ZERO)
    assert [p.path for p in problems] == [path]
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
    assert len(by_file[armhf[0]]) == 3  # float ABI, architecture, glibc
    assert by_file[armel_v6[0]] == [f"needs GLIBC_{armel_v6[1].glibc}, the target ships 2.24"]
