"""OS releases: releases/*.toml and the boards' `os`/`default_os`, checked values with the file and
line in every error; --os / XBUILD_OS / xbuild.toml's os choosing one; exit 36 for a release the
board does not run."""

import dataclasses
import shutil

import pytest

from tests.helpers import EXAMPLES, make_project
from tests.unit.test_cli import assert_user_error, xbuild
from xbuild import datafiles
from xbuild.board import releases, targets
from xbuild.containers import images
from xbuild.errors import ConfigError, UnknownRelease
from xbuild.pipeline import cache
from xbuild.pipeline import spec as specs
from xbuild.request import BuildRequest
from xbuild.toolchain import pick

PIS_32_64 = ["rpi2", "rpi3", "rpi3-64", "rpi4"]
DEBIAN = ["armhf", "arm64", "armel", "beaglebone", "ppc64el", "s390x"]


# --- the data -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name,glibc,glibcxx,cxxabi,suite", [
    ("bullseye", "2.31", "3.4.28", "1.3.12", "bullseye"),
    ("bookworm", "2.36", "3.4.30", "1.3.13", "bookworm"),
    ("trixie", "2.41", "3.4.33", "1.3.15", "trixie"),
])
def test_release_floors(name, glibc, glibcxx, cxxabi, suite):
    r = releases.all_releases()[name]
    assert (r.glibc, r.glibcxx, r.cxxabi, r.suite) == (glibc, glibcxx, cxxabi, suite)
    assert r.loader("armhf") == "/lib/ld-linux-armhf.so.3"
    assert r.loader("armel") == "/lib/ld-linux.so.3"
    assert r.loader("arm64") == "/lib/ld-linux-aarch64.so.1"


@pytest.mark.parametrize("name,python,pip", [
    ("bullseye", "3.9", "20.3.4"), ("bookworm", "3.11", "23.0.1"), ("trixie", "3.13", "25.1.1"),
    ("l4t-r32", "3.6", "9.0.1"),
])
def test_release_python_and_pip(name, python, pip):
    """The Debian ones as the mirror's Packages say (python3's Depends, python3-pip's Version);
    L4T's from knowledge of Ubuntu bionic, which is not reachable here."""
    r = releases.all_releases()[name]
    assert (r.python, r.pip) == (python, pip)


def test_riscv64_only_from_trixie_and_i386_not_in_trixie():
    known = releases.all_releases()
    assert [n for n, r in known.items() if r.loader("riscv64")] == ["trixie"]
    assert known["trixie"].loader("i386") is None and known["bookworm"].loader("i386")


@pytest.mark.parametrize("name", PIS_32_64)
def test_pis_run_raspberry_pi_os_and_default_to_trixie(name):
    t = targets.get(name)
    assert t.os == ("bullseye", "bookworm", "trixie") and t.default_os == "trixie"
    assert t.distro == "Raspberry Pi OS" and t.os_name == "Raspberry Pi OS trixie"
    assert t.suite == "trixie" and t.abi.glibc_max == "2.41"


def test_pi5_starts_at_bookworm():
    assert targets.get("rpi5").os == ("bookworm", "trixie")


@pytest.mark.parametrize("name", DEBIAN)
def test_debian_targets_offer_three_suites(name):
    t = targets.get(name)
    assert t.os == ("bullseye", "bookworm", "trixie") and t.default_os == "trixie"
    assert t.distro == "Debian"


@pytest.mark.parametrize("name", ["rpi0", "rpi1"])
def test_armv6_pis_run_raspberry_pi_os_armhf_trixie_by_default(name):
    t = targets.get(name)
    assert t.default_os == "trixie" and t.distro == "Raspberry Pi OS" and t.debian_arch == "armhf"
    assert t.abi.loader == "/lib/ld-linux-armhf.so.3"


def test_jetson_nano_defaults_to_l4t_r32_with_bullseyes_packages():
    t = targets.get("jetson-nano")
    assert t.default_os == "l4t-r32" and t.suite == "bullseye"  # the nearest suite on the mirror
    assert (t.glibc, t.abi.glibcxx_max, t.abi.cxxabi_max) == ("2.27", "3.4.25", "1.3.11")
    assert t.abi.loader == "/lib/ld-linux-aarch64.so.1"


def test_with_os_binds_suite_floors_and_loader():
    t = targets.get("rpi3").with_os("bullseye")
    assert t.suite == "bullseye" and t.glibc == "2.31" and t.release.name == "bullseye"
    assert t.abi.glibcxx_max == "3.4.28" and t.abi.loader == "/lib/ld-linux-armhf.so.3"
    assert t.summary()["os"] == "bullseye" and t.summary()["floors"]["glibcxx"] == "3.4.28"
    assert targets.get("rpi3").with_os("BULLSEYE") == t
    assert targets.get("rpi3").with_os(None) == targets.get("rpi3")


@pytest.mark.parametrize("board,name", [("rpi3", "buster"), ("riscv64", "bookworm"),
                                        ("rpi5", "bullseye"), ("i386", "trixie"),
                                        ("rpi3", "../../etc")])
def test_unknown_release_lists_the_boards(board, name):
    with pytest.raises(UnknownRelease) as exc:
        targets.get(board).with_os(name)
    t = targets.get(board)
    assert exc.value.exit_code == 36
    assert f"{t.default_os} (default)" in exc.value.message
    assert all(r in exc.value.message for r in t.os)
    assert "xbuild targets" in exc.value.hint


def test_images_follow_the_release():
    rpi3 = targets.get("rpi3")
    bullseye, bookworm = rpi3.with_os("bullseye"), rpi3.with_os("bookworm")
    assert images.builder_def(pick(bullseye, "cross")).tag.startswith("xbuild/builder:bullseye-armhf-cross-")
    assert images.builder_def(pick(bullseye, "cross")).parent.suite == "bullseye"
    assert images.builder_def(pick(bullseye, "emulate")).parent.suite == "bullseye"
    assert images.runtime_def(bullseye).suite == "bullseye"
    assert images.builder_def(pick(bullseye, "cross")).tag != images.builder_def(pick(bookworm, "cross")).tag
    run = images.runtime_def(bullseye, ("libssl-dev",))
    assert run.kind == "deps" and run.parent == images.runtime_def(bullseye)
    assert "libssl-dev" in run.dockerfile and ":armhf" not in run.dockerfile


# --- choosing the release for a build ----------------------------------------------------------

def test_os_from_xbuild_toml_build_and_target_tables(tmp_path):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n", "xbuild.toml":
                                            '[build]\nos = "bullseye"\n[target.rpi4]\nos = "bookworm"\n'})
    assert specs.resolve(project, BuildRequest("rpi3")).target.release.name == "bullseye"
    assert specs.resolve(project, BuildRequest("rpi4")).target.release.name == "bookworm"
    # the command line wins over the file
    assert specs.resolve(project, BuildRequest("rpi3", os="trixie")).target.release.name == "trixie"


def test_default_release_and_its_output_directory(tmp_path):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n"})
    s = specs.resolve(project, BuildRequest("rpi3"))
    assert s.target.release.name == "trixie" and s.out.name == "rpi3"
    other = specs.resolve(project, BuildRequest("rpi3", os="bullseye"))
    assert other.out.name == "rpi3-bullseye"  # two releases never replace each other's output
    assert other.options()["os"] == "bullseye"


def test_release_is_in_the_cache_key(tmp_path):
    a = specs.resolve(EXAMPLES / "hello-make", BuildRequest("rpi3", os="bullseye"), out=tmp_path / "a")
    b = specs.resolve(EXAMPLES / "hello-make", BuildRequest("rpi3", os="bookworm"), out=tmp_path / "a")
    image = "xbuild/builder:same"  # even with the same image tag, the release alone changes the key
    assert cache.key(a, "s" * 64, image) != cache.key(b, "s" * 64, image)
    assert cache.key(a, "s" * 64, image) == cache.key(dataclasses.replace(a, jobs=9), "s" * 64, image)


def test_os_in_xbuild_toml_must_be_a_string(tmp_path):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n", "xbuild.toml": "[build]\nos = 11\n"})
    with pytest.raises(ConfigError, match=r"\(line 2\): \[build\] 'os' must be an OS release name .*, not 11"):
        specs.resolve(project, BuildRequest("rpi3"))


def test_cli_unknown_release_is_exit_36(tmp_path):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n"})
    r = xbuild("--target", "rpi3", "--os", "buster", project)
    assert_user_error(r, 36)
    assert "bullseye, bookworm, trixie (default)" in r.stderr
    assert not (project / "xbuild-out").exists()


def test_cli_xbuild_os_env_and_toml(tmp_path):
    project = make_project(tmp_path / "p", {"Makefile": "all:\n"})
    assert_user_error(xbuild("--target", "riscv64", project, env_extra={"XBUILD_OS": "bookworm"}), 36)
    (project / "xbuild.toml").write_text('[target.riscv64]\nos = "bullseye"\n')
    r = xbuild("--target", "riscv64", project, "--json")
    assert r.returncode == 36
    assert '"exit_code": 36' in r.stdout and "trixie (default)" in r.stdout


def test_cli_run_unknown_release_is_exit_36(tmp_path):
    r = xbuild("run", "--target", "rpi3", "--os", "jessie", tmp_path / "none.tar.gz", "--", "true")
    assert_user_error(r, 36)


def test_cli_targets_shows_releases_and_glibc():
    out = xbuild("targets").stdout
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("Raspberry Pi OS:"))
    assert line.strip() == ("Raspberry Pi OS: bullseye (glibc 2.31), bookworm (glibc 2.36), "
                            "trixie (glibc 2.41, default)")


# --- malformed data: the file and the line ---------------------------------------------------

BOARD = """\
description = "a test board"
debian_arch = "armhf"
triple = "arm-linux-gnueabihf"
qemu_arch = "arm"
platform = "linux/arm/v7"
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
    """A data dir of our own: the real releases and one test board, caches cleared around it."""
    shutil.copytree(datafiles.data_dir() / "releases", tmp_path / "releases")
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "tb.toml").write_text(BOARD)
    targets.all_targets.cache_clear()
    releases.all_releases.cache_clear()
    monkeypatch.setenv("XBUILD_DATA_DIR", str(tmp_path))
    yield tmp_path
    monkeypatch.undo()
    targets.all_targets.cache_clear()
    releases.all_releases.cache_clear()


def test_the_test_data_dir_loads(data_dir):
    assert targets.get("tb").release.name == "bookworm"


@pytest.mark.parametrize("old,new,expected", [
    ('glibc = "2.31"', 'glibc = "2.31x"', r"bullseye.toml \(line 5\): 'glibc' must be a version"),
    ('glibc = "2.31"', 'glibc = 2.31', r"bullseye.toml \(line 5\): 'glibc' must be a version"),
    ('glibcxx = "3.4.28"', 'glibcxx = ""', r"\(line 6\): 'glibcxx' must be a GLIBCXX_ version"),
    ('suite = "bullseye"', 'suite = "Bull Seye"', r"\(line 4\): 'suite' must be a Debian suite"),
    ('cxxabi = "1.3.12"', 'cxxabi = "1.3.12"\nlibc = "x"', r"\(line 8\): unknown key 'libc'"),
    ('cxxabi = "1.3.12"\n', '', r"bullseye.toml: missing key 'cxxabi'"),
    ('armhf = "/lib/ld-linux-armhf.so.3"', 'armhf = "lib/ld-linux-armhf.so.3"',
     r"\(line 17\): \[loaders\] 'armhf' must be an absolute path"),
    ('description = "Debian 11"', 'description = ""', r"\(line 3\): 'description' must be a non-empty string"),
    ('cxxabi = "1.3.12"', 'cxxabi = "CXXABI_1.3.12"', r"\(line 7\): 'cxxabi' must be a CXXABI_ version"),
    ('[loaders]', '[loaderz]', r"\(line 13\): unknown table \[loaderz\]"),
    ('armhf = "/lib/ld-linux-armhf.so.3"', 'armhf = 3', r"\(line 17\): \[loaders\] 'armhf' must be an absolute path"),
    ('armhf = "/lib/ld-linux-armhf.so.3"', 'arm = "/lib/ld-linux-armhf.so.3"',
     r"\(line 17\): \[loaders\] 'arm' must be a Debian architecture xbuild knows \(amd64, "),
    ('python = "3.9"', 'python = "3"', r"\(line 8\): 'python' must be a CPython version such as \"3.11\""),
    ('python = "3.9"', 'python = 3.9', r"\(line 8\): 'python' must be a CPython version"),
    ('pip = "20.3.4"', 'pip = "latest"', r"\(line 9\): 'pip' must be a pip version"),
    ('pip = "20.3.4"', '', r"bullseye.toml: missing key 'pip'"),
])
def test_bad_release_file(data_dir, old, new, expected):
    path = data_dir / "releases" / "bullseye.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=expected):
        releases.all_releases()


def test_a_release_without_loaders(data_dir):
    path = data_dir / "releases" / "bullseye.toml"
    path.write_text(path.read_text().split("[loaders]")[0] + "[loaders]\n")
    with pytest.raises(ConfigError, match=r"bullseye.toml \(line 13\): 'loaders' is an empty table"):
        releases.all_releases()


def test_a_release_file_name_is_its_name(data_dir):
    (data_dir / "releases" / "Bull Seye.toml").write_text((data_dir / "releases" / "bullseye.toml").read_text())
    with pytest.raises(ConfigError, match=r"Bull Seye.toml: 'Bull Seye' is not a release name"):
        releases.all_releases()


@pytest.mark.parametrize("old,new,expected", [
    ('os = ["bullseye", "bookworm"]', 'os = ["bullseye", "buster"]',
     r"tb.toml \(line 6\): 'os' lists 'buster', which is not an OS release \(bookworm, bullseye, l4t-r32, trixie\)"),
    ('os = ["bullseye", "bookworm"]', 'os = []', r"tb.toml \(line 6\): 'os' is an empty list"),
    ('default_os = "bookworm"', 'default_os = "trixie"',
     r"tb.toml \(line 7\): 'default_os' must be one of os = \['bullseye', 'bookworm'\], not 'trixie'"),
    ('debian_arch = "armhf"', 'debian_arch = "riscv64"',
     r"tb.toml \(line 6\): 'os' lists bullseye, which has no riscv64 port"),
    ('default_os = "bookworm"\n', '', r"tb.toml: missing key 'default_os'"),
])
def test_bad_board_os(data_dir, old, new, expected):
    path = data_dir / "targets" / "tb.toml"
    path.write_text(BOARD.replace(old, new, 1))
    with pytest.raises(ConfigError, match=expected):
        targets.all_targets()


def test_a_board_file_cannot_pick_the_release_object(data_dir):
    (data_dir / "targets" / "tb.toml").write_text(BOARD.replace("[abi]", 'release = "x"\n\n[abi]'))
    with pytest.raises(ConfigError, match="unknown key 'release'"):
        targets.all_targets()


def test_a_release_that_is_no_debian_suite_names_itself():
    assert targets.get("jetson-nano").os_name == "NVIDIA L4T R32 (Ubuntu 18.04)"
    assert targets.get("jetson-nano").with_os("bookworm").os_name == "Debian bookworm"
