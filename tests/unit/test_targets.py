"""xbuild.board.targets: every board file loads, the boards docs/boards.md promises exist with the right ABI,
names and aliases resolve, and a broken board file is refused with a message naming the problem."""

import re
import shutil

import pytest

from xbuild import datafiles
from xbuild.board import releases, targets
from xbuild.errors import ConfigError, UnknownTarget

REQUIRED = ["rpi0", "rpi1", "rpi2", "rpi3", "rpi3-64", "rpi4", "rpi5", "beaglebone", "jetson-nano",
            "armhf", "arm64", "armel", "i386", "ppc64el", "s390x", "riscv64"]


def test_every_target_file_loads():
    files = datafiles.data_files("targets")
    loaded = targets.all_targets()
    assert files, "no targets/*.toml found"
    assert sorted(loaded) == sorted(f.stem for f in files)
    for name, t in loaded.items():
        assert isinstance(t, targets.Target)
        assert t.name == name


@pytest.mark.parametrize("name", REQUIRED)
def test_required_board_exists(name):
    t = targets.get(name)
    assert t.name == name
    assert t.description
    assert t.triple and t.debian_arch and t.qemu_arch and t.suite
    assert re.fullmatch(r"2\.\d+", t.glibc)
    assert t.abi.glibc_max == t.glibc
    assert t.release.name == t.default_os in t.os
    assert t.abi.loader == t.release.loader(t.debian_arch) and t.abi.loader.startswith("/")


@pytest.mark.parametrize("name", ["rpi0", "rpi1"])
def test_armv6_pis_are_raspberry_pi_os_armhf_hard_float_arm1176_through_zig(name):
    t = targets.get(name)
    assert (t.debian_arch, t.triple, t.distro) == ("armhf", "arm-linux-gnueabihf", "Raspberry Pi OS")
    assert t.qemu_cpu == "arm1176" and t.platform == "linux/arm/v6"
    assert (t.abi.machine, t.abi.arm_arch_max, t.abi.float_abi) == ("ARM", "v6KZ", "hard")
    assert "-mcpu=arm1176jzf-s" in t.cflags and t.toolchain == "zig"


def test_armel_stays_debian_armel_for_its_users():
    t = targets.get("armel")
    assert (t.debian_arch, t.triple, t.abi.float_abi, t.toolchain) == \
        ("armel", "arm-linux-gnueabi", "soft", None)


def test_riscv64_is_trixie():
    t = targets.get("riscv64")
    assert t.suite == "trixie" and t.os == ("trixie",)
    assert t.debian_arch == "riscv64"
    assert t.abi.bits == 64
    assert t.qemu_cpu is None  # qemu_cpu = "" in the file means "qemu's default"


def test_every_platform_is_linux():
    for t in targets.all_targets().values():
        assert t.platform.startswith("linux/"), t.name
        os_, arch, _variant = t.os_arch_variant
        assert os_ == "linux" and arch


def test_abi_tables_are_consistent():
    for t in targets.all_targets().values():
        assert t.abi.bits in (32, 64), t.name
        assert t.abi.endian in ("little", "big"), t.name
        if t.abi.machine == "ARM":
            assert t.abi.float_abi in ("soft", "hard"), t.name
            assert t.abi.arm_arch_max, t.name


def test_aliases_are_unique_and_never_shadow_a_name():
    all_ = targets.all_targets()
    seen: dict[str, str] = {}
    for t in all_.values():
        for alias in t.aliases:
            key = alias.lower()
            assert key not in {n.lower() for n in all_}, f"alias {alias} of {t.name} is a target name"
            assert key not in seen, f"alias {alias} of {t.name} also belongs to {seen.get(key)}"
            seen[key] = t.name


def test_alias_resolves():
    assert targets.get("pi3").name == "rpi3"
    assert targets.get("pi0").name == "rpi0"


def test_every_alias_resolves_to_its_target():
    for t in targets.all_targets().values():
        for alias in t.aliases:
            assert targets.get(alias) is t


def test_names_and_aliases_are_case_insensitive():
    assert targets.get("PI3").name == "rpi3"
    assert targets.get("RPI4").name == "rpi4"


def test_unknown_target_suggests_close_names():
    with pytest.raises(UnknownTarget) as exc:
        targets.get("rpi9")
    err = exc.value
    assert err.exit_code == 3
    assert "rpi9" in err.message
    for name in ("rpi3", "rpi4", "rpi5"):
        assert name in err.hint
    assert "xbuild targets" in err.hint


def test_unknown_target_with_a_dash_suggests_the_name():
    with pytest.raises(UnknownTarget) as exc:
        targets.get("rpi-3")
    assert "rpi3" in exc.value.hint


def test_unknown_target_far_from_everything_has_no_suggestion():
    with pytest.raises(UnknownTarget) as exc:
        targets.get("zzzzzzzzzz")
    assert "did you mean" not in exc.value.hint
    assert "xbuild targets" in exc.value.hint


def test_summary_is_json_friendly():
    s = targets.get("rpi0").summary()
    assert s["name"] == "rpi0" and s["arch"] == "armhf" and s["cpu"] == "arm1176"
    assert isinstance(s["aliases"], list) and "pi0" in s["aliases"]


# --- malformed board files -------------------------------------------------------------------

GOOD = """\
description = "a test board"
aliases = ["tb"]
debian_arch = "armhf"
triple = "arm-linux-gnueabihf"
qemu_arch = "arm"
qemu_cpu = "cortex-a7"
platform = "linux/arm/v7"
cflags = ["-mcpu=cortex-a7"]
os = ["bullseye", "bookworm"]
default_os = "bookworm"

[abi]
machine = "ARM"
bits = 32
endian = "little"
float_abi = "hard"
arm_arch_max = "v7"
"""


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """XBUILD_DATA_DIR pointed at an empty tmp dir with a targets/ folder; the cache cleared around it."""
    (tmp_path / "targets").mkdir()
    shutil.copytree(datafiles.data_dir() / "releases", tmp_path / "releases")
    targets.all_targets.cache_clear()
    releases.all_releases.cache_clear()
    monkeypatch.setenv("XBUILD_DATA_DIR", str(tmp_path))
    yield tmp_path / "targets"
    monkeypatch.undo()
    targets.all_targets.cache_clear()
    releases.all_releases.cache_clear()


def test_tmp_data_dir_with_a_good_file_loads(data_dir):
    (data_dir / "testboard.toml").write_text(GOOD)
    loaded = targets.all_targets()
    assert list(loaded) == ["testboard"]
    t = loaded["testboard"]
    assert t.cflags == ("-mcpu=cortex-a7",) and t.aliases == ("tb",)
    assert t.abi.float_abi == "hard" and t.abi.glibc_max == "2.36"
    assert targets.get("tb") is t


def test_malformed_unknown_key(data_dir):
    (data_dir / "bad.toml").write_text(
        GOOD.replace('default_os = "bookworm"', 'default_os = "bookworm"\ndefault_oss = "x"'))
    with pytest.raises(ConfigError) as exc:
        targets.all_targets()
    assert "'default_oss'" in exc.value.message
    assert "bad.toml" in exc.value.message
    assert "default_os" in exc.value.hint  # the known keys are listed


def test_malformed_missing_key(data_dir):
    (data_dir / "bad.toml").write_text(GOOD.replace('triple = "arm-linux-gnueabihf"\n', ""))
    with pytest.raises(ConfigError, match=r"missing key 'triple'"):
        targets.all_targets()


def test_malformed_missing_abi_table(data_dir):
    (data_dir / "bad.toml").write_text(GOOD.split("[abi]")[0])
    with pytest.raises(ConfigError, match=r"missing \[abi\]"):
        targets.all_targets()


def test_malformed_unknown_key_in_abi(data_dir):
    (data_dir / "bad.toml").write_text(GOOD + 'endianness = "big"\n')
    with pytest.raises(ConfigError) as exc:
        targets.all_targets()
    assert "[abi]" in exc.value.message and "'endianness'" in exc.value.message


def test_malformed_missing_key_in_abi(data_dir):
    (data_dir / "bad.toml").write_text(GOOD.replace("bits = 32\n", ""))
    with pytest.raises(ConfigError, match=r"\[abi\].*missing key 'bits'"):
        targets.all_targets()


def test_malformed_wrong_type(data_dir):
    (data_dir / "bad.toml").write_text(GOOD.replace('cflags = ["-mcpu=cortex-a7"]', 'cflags = "-O2"'))
    with pytest.raises(ConfigError) as exc:
        targets.all_targets()
    assert "'cflags'" in exc.value.message and "a list" in exc.value.message


def test_malformed_toml_syntax(data_dir):
    (data_dir / "bad.toml").write_text(GOOD.replace('default_os = "bookworm"', "default_os = bookworm"))
    with pytest.raises(ConfigError) as exc:
        targets.all_targets()
    assert "not valid TOML" in exc.value.message and "line" in exc.value.message


# Every rule of a board file, on a real broken file: the file, the line, what the value must be.
@pytest.mark.parametrize("old, new, expected", [
    ('description = "a test board"', 'description = ""', "(line 1): 'description' must be a non-empty string"),
    ('aliases = ["tb"]', 'aliases = ["t b"]', "(line 2): 'aliases' lists 't b', which is not a board name"),
    ('debian_arch = "armhf"', 'debian_arch = "arm"',
     "(line 3): 'debian_arch' must be a Debian architecture xbuild knows (amd64, arm64, armel, armhf, "),
    ('triple = "arm-linux-gnueabihf"', 'triple = "arm"', "(line 4): 'triple' must be a GNU triple such as "),
    ('qemu_arch = "arm"', 'qemu_arch = "qemu-arm"', "(line 5): 'qemu_arch' must be a qemu-user architecture"),
    ('qemu_cpu = "cortex-a7"', 'qemu_cpu = "cortex a7"', "(line 6): 'qemu_cpu' must be a QEMU_CPU model"),
    ('platform = "linux/arm/v7"', 'platform = "arm/v7"',
     "(line 7): 'platform' must be a Docker platform linux/<arch>[/<variant>], such as linux/arm/v7, not 'arm/v7'"),
    ('platform = "linux/arm/v7"', 'platform = "linux/arm/7"', "(line 7): 'platform' must be a Docker platform"),
    ('cflags = ["-mcpu=cortex-a7"]', 'cflags = ["mcpu=cortex-a7"]',
     "(line 8): 'cflags' lists 'mcpu=cortex-a7', which is not a compiler flag such as -mcpu=cortex-a7"),
    ('os = ["bullseye", "bookworm"]', 'os = "bookworm"', "(line 9): 'os' must be a list, each entry an OS release"),
    ('default_os = "bookworm"', 'default_os = "bookworm"\ndistro = ""',
     "(line 11): 'distro' must be a distribution name"),
    ('default_os = "bookworm"', 'default_os = "bookworm"\nnotes = 3', "(line 11): 'notes' must be a string, not 3"),
    ('machine = "ARM"', 'machine = "arm"', "(line 13): [abi] 'machine' must be an ELF machine xbuild reads (AArch64, "
                                           "ARM, "),
    ("bits = 32", "bits = 16", "(line 14): [abi] 'bits' must be one of 32, 64, not 16"),
    ("bits = 32", "bits = true", "(line 14): [abi] 'bits' must be one of 32, 64, not True"),
    ('endian = "little"', 'endian = "LE"', "(line 15): [abi] 'endian' must be one of 'little', 'big', not 'LE'"),
    ('float_abi = "hard"', 'float_abi = "softfp"', "(line 16): [abi] 'float_abi' must be one of 'hard', 'soft'"),
    ('arm_arch_max = "v7"', 'arm_arch_max = "v7-A"',
     "(line 17): [abi] 'arm_arch_max' must be an ARM architecture xbuild knows (pre-v4, v4, v4T, "),
    ('arm_arch_max = "v7"', 'arm_arch_max = "armv6"', "(line 17): [abi] 'arm_arch_max' must be an ARM architecture"),
    ('float_abi = "hard"\n', "", "(line 12): [abi] 'float_abi' is missing: an ARM board needs it"),
    ('machine = "ARM"', 'machine = "AArch64"', "(line 16): [abi] 'float_abi' is for ARM boards only, and this "
                                                "one is AArch64"),
    ("[abi]", "[abi]\nbitz = 32", "(line 13): [abi] unknown key 'bitz'"),
    ("[abi]", "[abis]", "(line 12): unknown table [abis]"),
])
def test_each_board_rule_names_file_line_and_what(data_dir, old, new, expected):
    assert old in GOOD
    (data_dir / "bad.toml").write_text(GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        targets.all_targets()
    assert exc.value.message.startswith(str(data_dir / "bad.toml"))
    assert expected in exc.value.message
    assert exc.value.hint


def test_softfp_is_refused_with_a_hint(data_dir):
    """-mfloat-abi=softfp code passes floats in core registers: the gate reads it as "soft", so a
    board requiring "softfp" would refuse every build."""
    (data_dir / "bad.toml").write_text(GOOD.replace('float_abi = "hard"', 'float_abi = "softfp"'))
    with pytest.raises(ConfigError) as exc:
        targets.all_targets()
    assert exc.value.hint == '-mfloat-abi=softfp code is "soft"'


def test_unknown_board_key_says_did_you_mean(data_dir):
    (data_dir / "bad.toml").write_text(GOOD.replace("qemu_cpu =", "qemu_cpus ="))
    with pytest.raises(ConfigError) as exc:
        targets.all_targets()
    assert "(line 6): unknown key 'qemu_cpus'" in exc.value.message
    assert exc.value.hint.startswith("did you mean 'qemu_cpu'? known keys: abi, aliases, cflags")


def test_cache_is_restored_after_the_tmp_data_dir(data_dir):
    (data_dir / "only.toml").write_text(GOOD)
    assert list(targets.all_targets()) == ["only"]


def test_real_targets_are_back():
    # runs after the fixture tests above: the cache must hold the real boards again
    assert "rpi3" in targets.all_targets()
    assert "only" not in targets.all_targets()
