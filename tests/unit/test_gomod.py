"""Go modules (docs/go.md): GOARCH/GOARM per board, the sandbox's Go environment, go.mod and
go.sum read as data, Go's module hash, the host's module fetch and its bounds, and a Go program's build information.

The expected hashes and the build-information section are Go's own: `go mod download` (Go
1.24.4) of a module made for the experiments, and the .go.buildinfo section `go build` (Go 1.27.3,
GOARCH=arm GOARM=6) wrote into a program that imports it."""

from __future__ import annotations

import base64
import os
import struct
import zipfile
import zlib

import pytest

from xbuild.artifact import artifacts, elf, goinfo
from xbuild.board import targets
from xbuild.errors import (
    AbiMismatch,
    ConfigError,
    GoModuleError,
    GoModuleMismatch,
    PackageUnavailable,
    UnsafeProjectFile,
)
from xbuild.pipeline import gobuild, gomod
from xbuild.project import gomodule, goproxy

# example.com/greet v1.0.0, as the experiments' file:// proxy served it
GREET_MOD = b"module example.com/greet\n\ngo 1.21\n"
GREET_GO = b'package greet\n\nfunc Hello() string { return "hello from greet v1.0.0" }\n'
GREET_SUM = "h1:A2WfWTKeDsmEn7AM1f2RZ5b3qDcC8PxswgP++qoRB+4="          # go.sum, written by go
GREET_MOD_SUM = "h1:rcTgdhGf2dvXrNywJG0jkV+0342RC7PiKN0YX33Ej6Y="

# .go.buildinfo of example.com/app (imports example.com/greet), GOARCH=arm GOARM=6, go1.27.3
APP_BUILDINFO = zlib.decompress(base64.b64decode(
    "eNpdks1u00AQx6sKRB1x4IR67BGUEmy3aaGSD86HggQlVQBV4oI264mzeL+yO07cKwcegBfhGXgJxJVLb1y4cYJxmkShvtjz"
    "m//O/Ge8fw8G5mBcCpkJPTm7s7tz69nLTdSKT1tHv+6Gi6/3v+Debvrz273r7/vXluE0gIopK6HFjXrKrG0ok91mwaMM5iAf"
    "B40M7H/J3AFgMI9aYSsMptFZGl9OLt++hJ5XfX2ankeTePS+PT6a9Xj32UXlF/lFszkzo07zOGksTQdPli/qCglUsIZU3AoJ"
    "Lsn5GqETqnacoCvXuh5MWClxMOz1O+8GCTcamdDgFKusM9wn4SF3VxYNLz0a5ZjOkugwA24cQ1A0m9B5rcoNgseP3uhlYYQK"
    "SThFtNyYQpC00qUiYY08uDnUvUBjAWCnwDJwfnVgO0vHqGcOdU6RUVEPgNxSodqLB8i0WUaeRWF8rISmAKVXsgB18+mB2+1w"
    "yiKqho5xGDNeSDYGWY9Q2mw502by0kmKZiXQBphjasU8LZIjN9LomiyEduRfCl3MjSwV3DB/pWpEQdUOn2vIGYo50GyCSWpf"
    "Q/LMHa4UZCtun/hCZGvgJQeHZg7OCbo3kuHEOLXKlh6skYILWk24+pndwfBD/3XaedXvbdhgmI66LxLm1AYM3yTkrKy2FOfJ"
    "SeNP3I0+7x+4nU+dB+nDH7/X9/8fHCsVmQ=="))


# --- GOARCH / GOARM ----------------------------------------------------------------------------

ARMV6, ARMV5 = {"rpi0", "rpi1"}, {"armel"}


@pytest.mark.parametrize("name", sorted(targets.all_targets()))
def test_goarch_per_board(name):
    target = targets.get(name)
    if target.debian_arch not in gomod.GOARCH:
        with pytest.raises(ConfigError, match="no port"):
            gomod.goarch(target)
        return
    env = gomod.goarch(target)
    assert env["GOOS"] == "linux"
    if target.debian_arch in ("armhf", "armel"):
        assert env["GOARCH"] == "arm"
        assert env["GOARM"] == ("6" if name in ARMV6 else "5" if name in ARMV5 else "7")
    else:
        assert "GOARM" not in env
        assert env["GOARCH"] == {"arm64": "arm64", "amd64": "amd64", "i386": "386", "ppc64el": "ppc64le",
                                 "riscv64": "riscv64", "s390x": "s390x"}[target.debian_arch]


@pytest.mark.parametrize(("arch", "goarm"), [("v4T", 5), ("v5TEJ", 5), ("v6", 6), ("v6KZ", 6), ("v6K", 6),
                                             ("v6T2", 6), ("v7", 7), ("v8-A", 7)])
def test_goarm_for(arch, goarm):
    assert goinfo.goarm_for(arch) == goarm


def test_goarm_for_refuses_m_profile():
    with pytest.raises(ValueError):
        goinfo.goarm_for("v7E-M")


# --- the build's environment -------------------------------------------------------------------

def module(vendored=False, go="1.22"):
    return gomodule.GoModule("example.com/app", go, None, (), vendored)


def test_environment_offline_with_the_host_module_cache():
    env = gomod.environment(targets.get("rpi0"))
    assert env["GOARCH"] == "arm" and env["GOARM"] == "6" and env["CGO_ENABLED"] == "1"
    assert env["GOPROXY"] == "off" and env["GOTOOLCHAIN"] == "local" and env["GOSUMDB"] == "off"
    assert env["GOMODCACHE"] == gomod.MODCACHE
    assert env["GOFLAGS"].split() == ["-trimpath", "-buildvcs=false", "-mod=readonly"]
    # cgo's compiler and pkg-config are the toolchain's (its environment names them): never set here
    assert not {"CC", "CXX", "PKG_CONFIG", "PATH"} & set(env)


def test_environment_vendored_ignores_the_proxy():
    env = gomod.environment(targets.get("rpi4"), vendored=True, proxy="file:///xbuild/go/proxy")
    assert "-mod=vendor" in env["GOFLAGS"].split()
    assert env["GOPROXY"] == "off" and "GOARM" not in env


def test_environment_from_a_fetched_proxy_tree():
    env = gomod.environment(targets.get("jetson-nano"), proxy="file:///xbuild/go/proxy")
    assert env["GOPROXY"] == "file:///xbuild/go/proxy"
    assert env["GOMODCACHE"] != gomod.MODCACHE  # the container's own, writable: Go extracts into it


@pytest.mark.parametrize("line", [None, "1.21", "1.27", "1.27.3", "1.27rc1", "1.14"])
def test_go_line_the_toolchain_builds(line):
    gomod.check_go_version("example.com/app", line, "go1.27.3")


@pytest.mark.parametrize("line", ["1.28", "1.27.4", "2.0"])
def test_go_line_newer_than_the_toolchain(line):
    with pytest.raises(ConfigError, match=f"needs Go {line}") as err:
        gomod.check_go_version("example.com/app", line, "go1.27.3")
    assert "1.27.3" in err.value.hint


def test_go_line_not_a_version():
    with pytest.raises(ConfigError, match="not a Go version"):
        gomod.check_go_version("example.com/app", "latest", "go1.27.3")


# --- go.mod and go.sum -------------------------------------------------------------------------

GO_MOD = """\
// the app
module "example.com/app" // quoted, as go allows

go 1.22.3

toolchain go1.27.3

require example.com/one v1.2.3

require (
\texample.com/two v0.1.0 // indirect
\t`example.com/Three` v2.0.0+incompatible
)

replace example.com/one => ../one
exclude (
\texample.com/two v0.0.9
)
"""


def test_parse_mod():
    path, go, toolchain, requires = gomodule.parse_mod(GO_MOD)
    assert (path, go, toolchain) == ("example.com/app", "1.22.3", "go1.27.3")
    assert requires == [("example.com/one", "v1.2.3"), ("example.com/two", "v0.1.0"),
                        ("example.com/Three", "v2.0.0+incompatible")]


def test_read_module(tmp_path):
    (tmp_path / "go.mod").write_text(GO_MOD)
    assert not gomodule.read_module(tmp_path).vendored
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "modules.txt").write_text("# example.com/one v1.2.3\n")
    found = gomodule.read_module(tmp_path)
    assert found.vendored and found.path == "example.com/app" and len(found.requires) == 3


def test_read_module_without_module_line(tmp_path):
    (tmp_path / "go.mod").write_text("go 1.22\n")
    with pytest.raises(ConfigError, match="no module line"):
        gomodule.read_module(tmp_path)


def test_read_module_never_follows_a_link(tmp_path):
    (tmp_path / "elsewhere").write_text("module example.com/x\n")
    os.symlink(tmp_path / "elsewhere", tmp_path / "go.mod")
    with pytest.raises(UnsafeProjectFile):
        gomodule.read_module(tmp_path)


def test_read_sums(tmp_path):
    assert gomodule.read_sums(tmp_path) == []
    (tmp_path / "go.sum").write_text(f"example.com/greet v1.0.0 {GREET_SUM}\n"
                                     f"example.com/greet v1.0.0/go.mod {GREET_MOD_SUM}\n\n")
    sums = gomodule.read_sums(tmp_path)
    assert [(s.module, s.version, s.go_mod_only) for s in sums] == [
        ("example.com/greet", "v1.0.0", False), ("example.com/greet", "v1.0.0/go.mod", True)]


def test_bad_sum_line():
    with pytest.raises(ConfigError, match="go.sum line 2"):
        gomodule.parse_sum(f"example.com/greet v1.0.0 {GREET_SUM}\nexample.com/greet v1.0.0 md5:x\n")


# --- Go's module hash --------------------------------------------------------------------------

def test_hash_zip_is_gos(tmp_path):
    path = tmp_path / "v1.0.0.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("example.com/greet@v1.0.0/go.mod", GREET_MOD)
        z.writestr("example.com/greet@v1.0.0/greet.go", GREET_GO)
    assert gomodule.hash_zip(path) == GREET_SUM


def test_hash_zip_sees_a_changed_file(tmp_path):
    path = tmp_path / "v1.0.0.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("example.com/greet@v1.0.0/go.mod", GREET_MOD)
        z.writestr("example.com/greet@v1.0.0/greet.go", GREET_GO.replace(b"hello", b"HELLO"))
    assert gomodule.hash_zip(path) != GREET_SUM


def test_hash_go_mod_is_gos():
    assert gomodule.hash_go_mod(GREET_MOD) == GREET_MOD_SUM


@pytest.mark.parametrize(("path", "escaped"), [("github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"),
                                               ("golang.org/x/sys", "golang.org/x/sys")])
def test_escape(path, escaped):
    assert gomodule.escape(path) == escaped


# --- a Go program's build information ----------------------------------------------------------

def test_parse_gos_buildinfo():
    build = goinfo.parse(APP_BUILDINFO)
    assert build is not None
    assert build.version == "go1.27.3"
    assert (build.settings["GOARCH"], build.goarm, build.settings["CGO_ENABLED"]) == ("arm", 6, "0")
    assert build.deps == (("example.com/greet", "v1.0.0", GREET_SUM),)


def fake_buildinfo(version: str, lines: list[str]) -> bytes:
    """The inline layout (Go 1.18 on), with the sentinels around the module information."""
    def string(b: bytes) -> bytes:  # a uvarint length, then the bytes
        n, length = len(b), b""
        while n >= 0x80:
            length, n = length + bytes([n & 0x7F | 0x80]), n >> 7
        return length + bytes([n]) + b
    modinfo = b"S" * 16 + "".join(line + "\n" for line in lines).encode() + b"E" * 16
    return goinfo.MAGIC + bytes([4, 2]) + bytes(16) + string(version.encode()) + string(modinfo)


@pytest.mark.parametrize(("goarm", "board", "ok"), [("6", "v6KZ", True), ("7", "v6KZ", False), ("5", "v6KZ", True),
                                                    ("6,softfloat", "v6KZ", True), ("7", "v7", True),
                                                    ("6", "v5TEJ", False), ("7", "v8-A", True)])
def test_goarm_against_the_board(goarm, board, ok):
    build = goinfo.parse(fake_buildinfo("go1.24.4", ["build\tGOARCH=arm", f"build\tGOARM={goarm}"]))
    assert build is not None
    found = goinfo.problems(goinfo.to_json(build), "ARM", 32, board)
    assert not found if ok else "SIGILL" in found[0]


def test_arm_program_that_does_not_say():
    build = goinfo.parse(fake_buildinfo("go1.24.4", ["build\tGOARCH=arm"]))
    assert build is not None and build.goarm is None
    assert "does not say" in goinfo.problems(goinfo.to_json(build), "ARM", 32, "v6KZ")[0]
    assert goinfo.problems(goinfo.to_json(build), "AArch64", 64, None) == []


def test_not_inline_or_not_go():
    assert goinfo.parse(b"\x7fELF" + bytes(60)) is None
    old = bytearray(fake_buildinfo("go1.17", []))
    old[15] = 0  # pointers, not inline strings: before Go 1.18
    assert goinfo.parse(bytes(old)) is None


def test_truncated_buildinfo():
    with pytest.raises(elf.ElfError, match="runs past"):
        goinfo.parse(fake_buildinfo("go1.24.4", ["build\tGOARM=6"])[:-10])


def elf32_with_section(name: bytes, data: bytes) -> bytes:
    """A minimal little-endian ELF32 ARM file: a null section, the named PROGBITS one, .shstrtab."""
    shstrtab = b"\0" + name + b"\0.shstrtab\0"
    body_off = 52
    data_off, str_off = body_off, body_off + len(data)
    shoff = str_off + len(shstrtab)
    header = (b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
              + struct.pack("<HHIIIIIHHHHHH", 2, 40, 1, 0, 0, shoff, 0x5000002, 52, 32, 0, 40, 3, 2))
    sections = (bytes(40)
                + struct.pack("<IIIIIIIIII", 1, 1, 3, 0, data_off, len(data), 0, 0, 16, 0)
                + struct.pack("<IIIIIIIIII", 2 + len(name), 3, 0, 0, str_off, len(shstrtab), 0, 0, 1, 0))
    return header + data + shstrtab + sections


def test_read_from_an_elf_file(tmp_path):
    path = tmp_path / "app"
    path.write_bytes(elf32_with_section(b".go.buildinfo", APP_BUILDINFO))
    build = goinfo.read(path)
    assert build is not None and build.goarm == 6
    info = elf.read_elf(path)
    assert info is not None and info.arm_arch is None  # what the gate alone sees of a Go program
    other = tmp_path / "c"
    other.write_bytes(elf32_with_section(b".data", b"x" * 8))
    assert goinfo.read(other) is None
    (tmp_path / "text").write_text("not ELF")
    assert goinfo.read(tmp_path / "text") is None


def test_section_over_its_limit(tmp_path):
    path = tmp_path / "app"
    path.write_bytes(elf32_with_section(b".go.buildinfo", APP_BUILDINFO))
    with pytest.raises(elf.ElfError, match="more than"):
        elf.read_section(path, ".go.buildinfo", 100)


def go_program(goarm: str) -> bytes:
    return elf32_with_section(b".go.buildinfo", fake_buildinfo("go1.24.4", ["build\tGOARCH=arm",
                                                                           f"build\tGOARM={goarm}"]))


def test_the_manifest_and_the_gate_see_goarm(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "app").write_bytes(go_program("7"))
    files = artifacts.describe(tmp_path)
    assert files[0]["go"] == {"version": "go1.24.4", "goarch": "arm", "goarm": 7}
    artifacts.gate(files, targets.get("rpi3").abi, "rpi3")  # an ARMv8 CPU in AArch32 runs GOARM=7
    with pytest.raises(AbiMismatch, match="bin/app: Go code built for GOARM=7") as err:
        artifacts.gate(files, targets.get("rpi0").abi, "rpi0")
    assert "GOARM=6" in str(err.value)
    (tmp_path / "bin" / "app").write_bytes(go_program("6"))
    artifacts.gate(artifacts.describe(tmp_path), targets.get("rpi0").abi, "rpi0")


def test_a_corrupt_buildinfo_is_recorded_not_fatal(tmp_path):
    (tmp_path / "app").write_bytes(elf32_with_section(b".go.buildinfo", fake_buildinfo("go1.24.4", ["x"])[:-10]))
    (entry,) = artifacts.describe(tmp_path)
    assert "go" not in entry and "runs past" in entry["go_error"]


# --- the host-side fetch from a module proxy (a file:// one made here: no network) ----------------

def proxy_tree(root, go_file=GREET_GO):
    where = root / "example.com" / "greet" / "@v"
    where.mkdir(parents=True)
    (where / "v1.0.0.mod").write_bytes(GREET_MOD)
    with zipfile.ZipFile(where / "v1.0.0.zip", "w") as z:
        z.writestr("example.com/greet@v1.0.0/go.mod", GREET_MOD)
        z.writestr("example.com/greet@v1.0.0/greet.go", go_file)
    return f"file://{root}"


SUMS = [gomodule.Sum("example.com/greet", "v1.0.0", GREET_SUM),
        gomodule.Sum("example.com/greet", "v1.0.0/go.mod", GREET_MOD_SUM)]


def test_fetch_checks_and_lays_out_a_goproxy_tree(tmp_path):
    proxy = proxy_tree(tmp_path / "proxy")
    fetched = goproxy.fetch(SUMS, tmp_path / "out", proxy=proxy)
    assert [f.to_json() for f in fetched] == [{"module": "example.com/greet", "version": "v1.0.0", "h1": GREET_SUM}]
    assert sorted(p.name for p in (tmp_path / "out" / "example.com" / "greet" / "@v").iterdir()) == \
        ["v1.0.0.mod", "v1.0.0.zip"]


def test_fetch_go_mod_only(tmp_path):
    proxy = proxy_tree(tmp_path / "proxy")
    (fetched,) = goproxy.fetch(SUMS[1:], tmp_path / "out", proxy=proxy)
    assert fetched.version == "v1.0.0/go.mod"
    assert not (tmp_path / "out" / "example.com" / "greet" / "@v" / "v1.0.0.zip").exists()


def test_fetch_refuses_what_go_sum_does_not_say(tmp_path):
    proxy = proxy_tree(tmp_path / "proxy", GREET_GO.replace(b"hello", b"HELLO"))
    with pytest.raises(GoModuleMismatch, match="does not match go.sum"):
        goproxy.fetch(SUMS, tmp_path / "out", proxy=proxy)
    assert not (tmp_path / "out" / "example.com" / "greet" / "@v" / "v1.0.0.zip").exists()


def test_fetch_a_module_the_proxy_lacks(tmp_path):
    proxy = proxy_tree(tmp_path / "proxy")
    sums = [gomodule.Sum("example.com/other", "v0.1.0/go.mod", GREET_MOD_SUM)]
    with pytest.raises(PackageUnavailable, match="example.com/other") as err:
        goproxy.fetch(sums, tmp_path / "out", proxy=proxy)
    assert "go mod vendor" in err.value.hint


@pytest.mark.parametrize(("module", "version"), [("../../etc", "v1.0.0"), ("example.com/../x", "v1.0.0"),
                                                 ("/abs", "v1.0.0"), ("example.com/.hidden", "v1.0.0"),
                                                 ("example.com/x", "latest"), ("example.com/x", "v1.0.0/../..")])
def test_fetch_refuses_odd_names_before_fetching(tmp_path, module, version):
    with pytest.raises(ConfigError, match="not a"):
        goproxy.fetch([gomodule.Sum(module, version, GREET_SUM)], tmp_path / "out", proxy="file:///nonexistent")
    assert not (tmp_path / "out").exists()


def test_fetch_wants_the_go_mod_line(tmp_path):
    with pytest.raises(ConfigError, match="without its /go.mod line"):
        goproxy.fetch(SUMS[:1], tmp_path / "out", proxy=proxy_tree(tmp_path / "proxy"))


def test_fetch_mismatch_keeps_nothing_and_has_its_own_exit_code(tmp_path):
    proxy = proxy_tree(tmp_path / "proxy", GREET_GO.replace(b"hello", b"HELLO"))
    with pytest.raises(GoModuleMismatch) as err:
        goproxy.fetch(SUMS, tmp_path / "out", proxy=proxy)
    assert err.value.exit_code == 50
    where = tmp_path / "out" / "example.com" / "greet" / "@v"
    assert sorted(p.name for p in where.iterdir()) == ["v1.0.0.mod"]  # the go.mod matched; no zip, no part file


def test_fetch_bounds_what_it_reads(tmp_path, monkeypatch):
    proxy = proxy_tree(tmp_path / "proxy")
    monkeypatch.setattr(goproxy, "MAX_MOD", 8)  # the real bounds are Go's: 16 MB, 500 MB
    with pytest.raises(GoModuleError, match="larger than"):
        goproxy.fetch(SUMS, tmp_path / "out", proxy=proxy)
    assert list((tmp_path / "out" / "example.com" / "greet" / "@v").iterdir()) == []


def test_fetch_bounds_go_sums_length(tmp_path, monkeypatch):
    monkeypatch.setattr(goproxy, "MAX_SUMS", 1)
    with pytest.raises(GoModuleError, match="more than xbuild fetches"):
        goproxy.fetch(SUMS, tmp_path / "out", proxy="file:///nonexistent")


def test_fetch_reuses_what_it_checked_and_refetches_what_changed(tmp_path):
    proxy = proxy_tree(tmp_path / "proxy")
    goproxy.fetch(SUMS, tmp_path / "out", proxy=proxy)
    zipped = tmp_path / "out" / "example.com" / "greet" / "@v" / "v1.0.0.zip"
    goproxy.fetch(SUMS, tmp_path / "out", proxy="file:///nonexistent")  # all there: nothing asked
    zipped.write_bytes(b"not a zip")  # a damaged cache entry is fetched again, not trusted
    goproxy.fetch(SUMS, tmp_path / "out", proxy=proxy)
    assert gomodule.hash_zip(zipped) == GREET_SUM


def test_bad_module_path_is_a_go_module_error(tmp_path):
    with pytest.raises(GoModuleError) as err:
        goproxy.fetch([gomodule.Sum("../../etc", "v1.0.0", GREET_SUM)], tmp_path / "out", proxy="file:///x")
    assert err.value.exit_code == 49


def test_replace_lines():
    text = ("module a\nreplace x/y => ./y\nreplace (\n  z v1.0.0 => ../z\n  w => w2 v1.2.0\n)\n"
            "replace q v1.0.0 => /etc // a comment\n")
    assert gomodule.parse_replaces(text) == [("x/y", "./y"), ("z", "../z"), ("w", "w2"), ("q", "/etc")]
    assert [gomodule.is_directory(r) for _, r in gomodule.parse_replaces(text)] == [True, True, False, True]


@pytest.mark.parametrize(("path", "out"), [("./y", False), ("./a/../b", False), ("../z", True), ("/etc", True),
                                           ("./a/../../b", True), (".", False), ("..", True)])
def test_replace_outside_the_project(path, out):
    assert gomodule.outside(path) is out


def test_the_build_environment_script():
    env = gomod.environment(targets.get("rpi0"), proxy="file:///xbuild/go/proxy")
    script = gobuild._env_script(env)
    assert "export PATH=/opt/go/bin:$PATH\n" in script
    assert "export GOARM=${GOARM:-6}\n" in script  # xbuild.toml's env may set it (the gate checks it)
    assert "export CGO_ENABLED=${CGO_ENABLED:-1}\n" in script
    assert 'export GOCACHE="${XBUILD_TOOL_CACHE:-/tmp/xbuild-go}/go-build"\n' in script
    assert "export GOPROXY=file:///xbuild/go/proxy\n" in script  # fixed: never the project's
    assert "export GOTOOLCHAIN=local\n" in script
    assert "export GOMODCACHE=/tmp/xbuild-go/mod\n" in script
    assert "export GOWORK=off\n" in script and "export XBUILD_GO_PACKAGES=./...\n" in script


def test_vendored_modules_listed(tmp_path):
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "modules.txt").write_text(
        "# example.com/greet v1.0.0\n## explicit; go 1.22\nexample.com/greet\n"
        "# example.com/x v0.2.0 => ./x\nexample.com/x\n")
    assert gobuild.vendored_modules(tmp_path) == [{"module": "example.com/greet", "version": "v1.0.0"},
                                          {"module": "example.com/x", "version": "v0.2.0"}]


def test_fetch_bounds_all_it_downloads_together(tmp_path):
    proxy = proxy_tree(tmp_path / "proxy")
    with pytest.raises(GoModuleError, match="XBUILD_MAX_OUTPUT_MB"):
        goproxy.fetch(SUMS, tmp_path / "out", proxy=proxy, total=len(GREET_MOD) + 10)  # the .mod fits, the zip not
    assert [p.name for p in (tmp_path / "out" / "example.com" / "greet" / "@v").iterdir()] == ["v1.0.0.mod"]


@pytest.mark.parametrize("goarm", ["9" * 5000, "²", "-1", "", "7x"])
def test_a_hostile_goarm_setting_is_no_goarm(goarm):
    build = goinfo.parse(fake_buildinfo("go1.27.3", [f"build\tGOARM={goarm}"]))
    assert build is not None and build.goarm is None  # the gate then refuses it on ARM: "does not say"


def test_a_huge_version_string_is_cut_for_the_manifest():
    build = goinfo.parse(fake_buildinfo("go" + "1" * 100_000, ["build\tGOARM=6"]))
    assert build is not None and len(build.version) == goinfo.MAX_TEXT


@pytest.mark.parametrize("cut", [16, 31, 32, 33, 40])
def test_garbage_buildinfo_never_crashes_describe(tmp_path, cut):
    data = fake_buildinfo("go1.27.3", ["build\tGOARM=6"])[:cut] + b"\xff" * 12
    (tmp_path / "app").write_bytes(elf32_with_section(b".go.buildinfo", data))
    (entry,) = artifacts.describe(tmp_path)
    assert "go" in entry or "go_error" in entry or entry["elf"]["machine"] == "ARM"


def test_fetch_bounds_its_time(tmp_path, monkeypatch):
    proxy = proxy_tree(tmp_path / "proxy")
    monkeypatch.setattr(goproxy, "TOTAL_SECONDS", -1)  # past its deadline at once
    with pytest.raises(GoModuleError, match="took more than"):
        goproxy.fetch(SUMS, tmp_path / "out", proxy=proxy)


def test_fetch_refuses_a_zip_that_is_not_one(tmp_path):
    proxy = proxy_tree(tmp_path / "proxy")
    (tmp_path / "proxy" / "example.com" / "greet" / "@v" / "v1.0.0.zip").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(GoModuleMismatch, match="not a module zip"):
        goproxy.fetch(SUMS, tmp_path / "out", proxy=proxy)
    assert not (tmp_path / "out" / "example.com" / "greet" / "@v" / "v1.0.0.zip").exists()


# --- a workspace (go.work) --------------------------------------------------------------------

def _workspace(root, work: str, modules=("app", "lib")):
    root.mkdir(parents=True, exist_ok=True)
    (root / "go.work").write_text(work)
    for name in modules:
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "go.mod").write_text(f"module example.com/{name.replace('/', '-')}\n\ngo 1.22\n")
    return root


def test_a_workspace_lists_its_modules_and_builds_each_ones_packages(tmp_path):
    root = _workspace(tmp_path / "ws", "go 1.23 // the workspace\n\nuse (\n\t./app\n\tlib/ // trailing\n)\n"
                                       "use .\nreplace example.com/x => ./x\n", ("app", "lib", "."))
    work = gomodule.read_workspace(root)
    assert work == gomodule.Workspace("1.23", ("app", "lib", "."), (("example.com/x", "./x"),))
    assert work.packages == ("./app/...", "./lib/...", "./...")


def test_no_go_work_is_no_workspace(tmp_path):
    assert gomodule.read_workspace(tmp_path) is None


# a\\b: Go on Linux reads one name with a backslash in it, never the directory a/b
@pytest.mark.parametrize("use", ["../outside", "/etc", "./a/../../b", "has space", "./$(id)", "a/*", "a\\b"])
def test_a_workspace_module_outside_the_project_or_oddly_named_is_refused(tmp_path, use):
    root = _workspace(tmp_path / "ws", f'use "{use}"\n', ())
    with pytest.raises(GoModuleError, match="a workspace module must be a directory inside the project"):
        gomodule.read_workspace(root)


def test_a_workspace_module_through_a_link_or_without_go_mod_is_refused(tmp_path):
    outside = _workspace(tmp_path / "elsewhere", "use ./real\n", ("real",))
    root = _workspace(tmp_path / "ws", "use ./linked\n", ())
    (root / "linked").symlink_to(outside / "real")  # Go would follow it out of the project
    with pytest.raises(GoModuleError, match="reached through a link"):
        gomodule.read_workspace(root)
    root = _workspace(tmp_path / "ws2", "use ./empty\n", ())
    (root / "empty").mkdir()
    with pytest.raises(GoModuleError, match="with a go.mod"):
        gomodule.read_workspace(root)
    with pytest.raises(GoModuleError, match="uses no module"):
        gomodule.read_workspace(_workspace(tmp_path / "ws3", "go 1.22\n", ()))


def test_a_linked_go_work_is_refused(tmp_path):
    root = _workspace(tmp_path / "ws", "use ./app\n", ("app",))
    (root / "go.work").unlink()
    (root / "go.work").symlink_to("/etc/hostname")
    with pytest.raises(UnsafeProjectFile, match="symbolic link"):
        gomodule.read_workspace(root)


def test_the_workspace_environment_names_its_go_work_and_packages():
    env = gomod.environment(targets.get("rpi4"), workspace="/xbuild/src/go.work", packages=("./app/...", "./lib/..."))
    assert env["GOWORK"] == "/xbuild/src/go.work"
    assert env["XBUILD_GO_PACKAGES"] == "./app/... ./lib/..."
