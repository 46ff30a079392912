"""xbuild.toolchain: toolchains/*.toml, pick(), and what a toolchain yields: the shims, the CMake
toolchain file, the Meson cross file and the environment of a build container. The shims are real
shell scripts that call Debian's cross compilers (or zig) by absolute path, so they are run here on
the host (where those compilers are installed by `scripts/setup.sh --tests`, zig by the ziglang
dependency) and their output is read back as ELF; the CMake toolchain file drives a real CMake
configure and build."""

from __future__ import annotations

import configparser
import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from xbuild import datafiles, toolchain
from xbuild.artifact.elf import read_elf
from xbuild.board import targets
from xbuild.board.requirement import glibc_tuple
from xbuild.errors import ConfigError

C_SOURCE = '#include <stdio.h>\nint main(void) { puts(__FILE__); return 0; }\n'


def _tool(name: str) -> None:
    if shutil.which(name) is None:
        pytest.skip(f"{name} not found (scripts/setup.sh --tests installs it)")


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    return root


def _shims(tmp_path: Path, target: str, mode: str = "cross") -> Path:
    """The shims of a target, written into tmp_path/bin as a build container gets them."""
    return _write(tmp_path, toolchain.pick(targets.get(target), mode).shims()) / "bin"


def _compile(tmp_path: Path, shim: Path, *flags: str, env: dict | None = None) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "hello.c").write_text(C_SOURCE)
    out = src / "hello"
    proc = subprocess.run(["sh", str(shim), *flags, "hello.c", "-o", "hello"], cwd=src,
                          env={"PATH": "/usr/bin:/bin", "XBUILD_SRC": str(src), **(env or {})},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


# target, cross compiler that must exist, machine, float ABI, ARM architecture
CROSS = [
    ("rpi3", "arm-linux-gnueabihf-gcc", "ARM", "hard", "v8-A"),
    ("beaglebone", "arm-linux-gnueabihf-gcc", "ARM", "hard", "v7"),
    ("rpi3-64", "aarch64-linux-gnu-gcc", "AArch64", None, None),
]


@pytest.mark.parametrize("target, compiler, machine, float_abi, arch", CROSS)
def test_plain_gcc_reaches_the_cross_compiler_with_the_boards_tuning(tmp_path, target, compiler,
                                                                     machine, float_abi, arch):
    """A Makefile's plain `gcc` (and `cc`, and the triple-prefixed name) gives target code, tuned
    for the board: beaglebone's ARMv7 Cortex-A8, rpi3's ARMv8 AArch32."""
    _tool(compiler)
    t = targets.get(target)
    assert toolchain.pick(t).name == "gcc-cross"
    for name in ("gcc", "cc", f"{t.triple}-gcc"):
        info = read_elf(_compile(tmp_path, _shims(tmp_path, target) / name))
        assert info is not None and info.machine == machine, (name, info)
        assert (info.float_abi, info.arm_arch) == (float_abi, arch), (name, info)


def test_the_build_path_does_not_reach_the_output(tmp_path):
    """-ffile-prefix-map: __FILE__ and debug info name ./hello.c, not the container's path."""
    _tool("arm-linux-gnueabihf-gcc")
    out = _compile(tmp_path, _shims(tmp_path, "rpi3") / "gcc", "-g", "-DX=__FILE__")
    data = out.read_bytes()
    assert str(tmp_path).encode() not in data
    assert b"hello.c" in data


def test_binutils_shims_reach_the_target_binutils(tmp_path):
    _tool("arm-linux-gnueabihf-ar")
    shims = _shims(tmp_path, "rpi3")
    for tool in ("ar", "ranlib", "strip", "nm", "readelf"):
        proc = subprocess.run(["sh", str(shims / tool), "--version"], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 0, (tool, proc.stderr)
    obj = _compile(tmp_path, shims / "gcc", "-c")  # an ARM object, archived by the shim's ar
    lib = tmp_path / "libhello.a"
    subprocess.run(["sh", str(shims / "ar"), "rcs", str(lib), str(obj)], check=True, timeout=30)
    listing = subprocess.run(["sh", str(shims / "readelf"), "-h", str(lib)], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    assert "Machine:" in listing and "ARM" in listing


def test_pkg_config_sees_the_targets_libraries_not_the_hosts(tmp_path):
    _tool("pkgconf")
    host_pcs = sorted(Path("/usr/lib/x86_64-linux-gnu/pkgconfig").glob("*.pc"))
    host_only = [p.stem for p in host_pcs
                 if not (Path("/usr/lib/arm-linux-gnueabihf/pkgconfig") / p.name).exists()
                 and not (Path("/usr/share/pkgconfig") / p.name).exists()]
    if not host_only:
        pytest.skip("no host-only .pc file to look for")
    shim = _shims(tmp_path, "rpi3") / "pkg-config"
    host = subprocess.run(["pkg-config", "--exists", host_only[0]], timeout=30)
    through_shim = subprocess.run(["sh", str(shim), "--exists", host_only[0]], timeout=30)
    assert host.returncode == 0 and through_shim.returncode != 0  # a host library would mislink


def test_emulate_mode_shims_call_the_native_compiler_with_the_tuning(tmp_path):
    """In emulate mode the container is the target: the native gcc, no cross binutils shims."""
    files = toolchain.pick(targets.get("rpi3"), "emulate").shims()
    assert "exec $XBUILD_CCACHE /usr/bin/gcc -mcpu=cortex-a53" in files["bin/gcc"]
    assert "exec $XBUILD_CCACHE /usr/bin/cpp -ffile-prefix-map" in files["bin/cpp"]  # no tuning for the preprocessor
    assert "bin/ar" not in files and "bin/pkg-config" not in files
    # On the host (x86-64) the same script is a native gcc with ARM flags: it must fail, proving
    # the shim passes the board's flags through.
    _tool("gcc")
    _write(tmp_path, files)
    (tmp_path / "x.c").write_text(C_SOURCE)
    proc = subprocess.run(["sh", str(tmp_path / "bin" / "gcc"), "-c", "x.c"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "-mfloat-abi=hard" in proc.stderr


def test_tuning_flags_are_shell_quoted():
    t = targets.get("rpi3")
    odd = dataclasses.replace(t, cflags=("-DNAME=two words", "-O2"))
    body = toolchain.pick(odd, "cross").shims()["bin/gcc"]
    assert "'-DNAME=two words' -O2" in body


def test_cmake_toolchain_file_cross_compiles_a_real_project(tmp_path):
    """The toolchain file, pointed at the shims (its /xbuild/bin moved to tmp_path/bin), makes
    CMake build an ARM executable with the target's compiler, found without any -D option."""
    _tool("cmake")
    _tool("arm-linux-gnueabihf-gcc")
    target = targets.get("rpi3")
    bin_dir = _shims(tmp_path, "rpi3")
    text = toolchain.pick(target).cmake_toolchain().replace(toolchain.BIN, str(bin_dir))
    (tmp_path / "toolchain.cmake").write_text(text)
    project = _write(tmp_path / "proj", {
        "CMakeLists.txt": "cmake_minimum_required(VERSION 3.13)\nproject(hello C)\n"
                          "add_executable(hello hello.c)\n",
        "hello.c": C_SOURCE})
    build = tmp_path / "build"
    env = {"PATH": "/usr/bin:/bin", "XBUILD_SRC": str(project)}
    configure = subprocess.run(["cmake", "-S", str(project), "-B", str(build),
                                f"-DCMAKE_TOOLCHAIN_FILE={tmp_path / 'toolchain.cmake'}"],
                               capture_output=True, text=True, env=env, timeout=300)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    (found,) = build.glob("CMakeFiles/*/CMakeCCompiler.cmake")
    assert f'set(CMAKE_C_COMPILER "{bin_dir}/arm-linux-gnueabihf-gcc")' in found.read_text()
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True, env=env, timeout=300)
    info = read_elf(build / "hello")
    assert info is not None and (info.machine, info.float_abi, info.arm_arch) == ("ARM", "hard", "v8-A")


@pytest.mark.parametrize("target, processor, multiarch", [
    ("rpi3", "arm", "arm-linux-gnueabihf"), ("rpi3-64", "aarch64", "aarch64-linux-gnu"),
    ("i386", "i686", "i386-linux-gnu"),  # i386's multiarch directory is not its GNU triple
])
def test_cmake_toolchain_file_names_the_target(target, processor, multiarch):
    text = toolchain.pick(targets.get(target)).cmake_toolchain()
    assert f"set(CMAKE_SYSTEM_PROCESSOR {processor})" in text
    assert f"set(CMAKE_LIBRARY_ARCHITECTURE {multiarch})" in text
    assert "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)" in text


@pytest.mark.parametrize("target, cpu_family, cpu, endian", [
    ("rpi3", "arm", "arm", "little"), ("arm64", "aarch64", "aarch64", "little"),
    ("i386", "x86", "i686", "little"), ("ppc64el", "ppc64", "powerpc64le", "little"),
    ("s390x", "s390x", "s390x", "big"), ("riscv64", "riscv64", "riscv64", "little"),
])
def test_meson_cross_file(target, cpu_family, cpu, endian):
    t = targets.get(target)
    ini = configparser.ConfigParser()
    ini.read_string(toolchain.pick(t).meson_cross())
    unquote = {k: v.strip("'") for k, v in ini["host_machine"].items()}
    assert unquote == {"system": "linux", "cpu_family": cpu_family, "cpu": cpu, "endian": endian}
    binaries = {k: v.strip("'") for k, v in ini["binaries"].items()}
    assert binaries["c"] == f"{toolchain.BIN}/{t.triple}-gcc"  # through the shims: tuned
    assert binaries["cpp"] == f"{toolchain.BIN}/{t.triple}-g++"
    assert binaries["pkg-config"] == f"{toolchain.BIN}/{t.triple}-pkg-config"


def test_files_per_mode():
    cross = toolchain.pick(targets.get("rpi3"), "cross").files()
    emulate = toolchain.pick(targets.get("rpi3"), "emulate").files()
    assert {"toolchain.cmake", "cross.ini", "bin/pkg-config", "bin/ar"} <= set(cross)
    assert not {"toolchain.cmake", "cross.ini"} & set(emulate)
    assert all(text.startswith("#!/bin/sh\n") for rel, text in cross.items() if rel.startswith("bin/"))


@pytest.mark.parametrize("target", ["rpi0", "rpi3", "arm64", "i386", "s390x"])
def test_environment_cross(target, monkeypatch):
    monkeypatch.setattr(targets, "host_arch", lambda: "amd64")
    monkeypatch.setattr(toolchain.base, "host_arch", lambda: "amd64")
    t = targets.get(target)
    env = toolchain.pick(t, "cross").environment(jobs=3)
    assert env["PATH"].startswith(f"{toolchain.BIN}:")  # the shims come first
    assert (env["CC"], env["CXX"], env["AR"]) == (f"{t.triple}-gcc", f"{t.triple}-g++", f"{t.triple}-ar")
    assert env["PKG_CONFIG"] == f"{t.triple}-pkg-config"
    assert (env["XBUILD_HOST"], env["XBUILD_BUILD"]) == (t.triple, "x86_64-linux-gnu")  # autoconf
    assert env["XBUILD_CMAKE_TOOLCHAIN"] == "/xbuild/toolchain.cmake"
    assert env["XBUILD_MESON_CROSS"] == "/xbuild/cross.ini"
    assert (env["XBUILD_TARGET"], env["XBUILD_JOBS"], env["XBUILD_DEBIAN_ARCH"]) == (t.name, "3", t.debian_arch)
    assert env["XBUILD_OUT"] == "/xbuild/stage/install" and env["XBUILD_PREFIX"] == "/usr/local"
    # qemu (configure probes, tests) emulates the board's CPU, only where qemu runs at all; rpi0's
    # probes link against Debian's ARMv7 armhf userland, so they run as the oldest ARMv7 core
    assert env.get("QEMU_CPU") == ({"rpi0": "cortex-a7", "rpi3": "max", "arm64": "cortex-a53"}.get(target))


@pytest.mark.parametrize("target", ["rpi2", "rpi3", "riscv64"])
def test_environment_emulate(target, monkeypatch):
    monkeypatch.setattr(targets, "host_arch", lambda: "amd64")
    monkeypatch.setattr(toolchain.base, "host_arch", lambda: "amd64")
    t = targets.get(target)
    env = toolchain.pick(t, "emulate").environment(jobs=1)
    assert (env["AR"], env["RANLIB"], env["STRIP"], env["PKG_CONFIG"]) == ("ar", "ranlib", "strip", "pkg-config")
    assert env["XBUILD_BUILD"] == env["XBUILD_HOST"] == t.triple  # native inside the target's root
    assert env["XBUILD_CMAKE_TOOLCHAIN"] == env["XBUILD_MESON_CROSS"] == ""
    assert env["CC"] == f"{t.triple}-gcc"  # the triple-named shim: tuned, native
    assert env.get("QEMU_CPU") == t.qemu_cpu


def test_environment_on_an_arm64_host_names_it_as_the_build_machine(monkeypatch):
    monkeypatch.setattr(targets, "host_arch", lambda: "arm64")
    monkeypatch.setattr(toolchain.base, "host_arch", lambda: "arm64")
    env = toolchain.pick(targets.get("rpi3"), "cross").environment(jobs=1)
    assert env["XBUILD_BUILD"] == "aarch64-linux-gnu"
    assert "QEMU_CPU" not in env  # armhf runs natively on an arm64 host: no qemu, no model


# --- toolchains as data, and pick() ---------------------------------------------------------------

def test_the_toolchains_load_from_their_files():
    defs = toolchain.all_toolchains()
    assert set(defs) == {"gcc-cross", "gcc-native", "gcc-hybrid", "zig"}
    assert (defs["gcc-cross"].family, defs["gcc-cross"].mode) == ("gcc", "cross")
    assert (defs["gcc-native"].family, defs["gcc-native"].mode) == ("gcc", "emulate")
    assert (defs["zig"].family, defs["zig"].mode) == ("zig", "cross")
    assert defs["zig"].musl["arm-linux-gnueabihf"] == "arm-linux-musleabihf"
    assert set(defs["gcc-cross"].compilers) == {"gcc", "cc", "g++", "c++", "cpp"}


@pytest.mark.parametrize("text, message", [
    ('family = "clang"', "(line 1): 'family' must be a toolchain family (gcc, hybrid, zig), not 'clang'"),
    ('mode = "native"', "(line 1): 'mode' must be one of 'cross', 'emulate', 'hybrid', not 'native'"),
    ('colour = "red"', "unknown key 'colour'"),
])
def test_a_wrong_toolchain_file_is_a_config_error_naming_it(tmp_path, text, message):
    good = (datafiles.data_dir() / "toolchains" / "gcc-cross.toml").read_text()
    key = text.split(" =")[0]
    lines = [line for line in good.splitlines() if not line.startswith(f"{key} =")]
    path = tmp_path / "odd.toml"
    path.write_text(text + "\n" + "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as exc:
        toolchain.registry._load(path)
    assert str(path) in exc.value.message and message in exc.value.message


@pytest.mark.parametrize("board, os, mode, static, expected", [
    ("rpi3", None, "cross", False, "gcc-cross"),         # Debian's GCC fits Raspberry Pi OS armhf v7+
    ("rpi3", "bullseye", "cross", False, "gcc-cross"),
    ("rpi3", None, "emulate", False, "gcc-native"),
    ("rpi0", None, "cross", False, "zig"),               # ARMv6: a C runtime made for the arm1176
    ("rpi0", "bullseye", "cross", False, "zig"),
    ("jetson-nano", None, "cross", False, "zig"),        # L4T R32: glibc 2.27 < bullseye's 2.31
    ("jetson-nano", "bookworm", "cross", False, "gcc-cross"),
    ("rpi3", None, "cross", True, "zig"),                # --static: zig + musl
    ("rpi5", None, "cross", True, "zig"),
    ("armel", None, "cross", False, "gcc-cross"),        # Debian armel users keep Debian's GCC
])
def test_pick(board, os, mode, static, expected):
    tc = toolchain.pick(targets.get(board).with_os(os), mode, static)
    assert (tc.name, tc.mode, tc.static) == (expected, mode, static)


def test_static_on_a_board_zig_has_no_musl_for_names_the_boards_that_have_it():
    with pytest.raises(ConfigError) as exc:
        toolchain.pick(targets.get("s390x"), "cross", static=True)
    assert "--static is not available for s390x" in exc.value.message
    listed = exc.value.hint.split(";")[0].removeprefix("boards with --static: ").split(", ")
    assert {"rpi0", "rpi3", "jetson-nano", "armel"} <= set(listed) and "s390x" not in listed
    with pytest.raises(ConfigError, match="not --mode emulate"):
        toolchain.pick(targets.get("rpi3"), "emulate", static=True)


def test_the_pi_zero_cannot_build_emulated_debian_armhf_gcc_would_make_armv7_code():
    with pytest.raises(ConfigError, match="rpi0 builds with zig in cross mode, not --mode emulate"):
        toolchain.pick(targets.get("rpi0"), "emulate")


def test_zig_shims_aim_at_the_exact_cpu_and_glibc_of_the_release():
    rpi0 = targets.get("rpi0")
    trixie, bullseye = (toolchain.pick(rpi0.with_os(r)).shims()["bin/gcc"] for r in ("trixie", "bullseye"))
    assert "/opt/zig/zig cc -target arm-linux-gnueabihf.2.41 -mcpu=arm1176jzf_s" in trixie
    assert "/opt/zig/zig cc -target arm-linux-gnueabihf.2.31 -mcpu=arm1176jzf_s" in bullseye
    # trixie armhf is 64-bit time_t (Debian's GCC there defines it; zig does not): data, per suite
    assert "-D_TIME_BITS=64 -D_FILE_OFFSET_BITS=64" in trixie and "_TIME_BITS" not in bullseye
    # the -dev packages' headers after zig's own libc headers; their libraries on the link path
    assert "-idirafter /usr/include/arm-linux-gnueabihf -idirafter /usr/include" in trixie
    assert "-L/usr/lib/arm-linux-gnueabihf" in trixie and "-static" not in trixie
    files = toolchain.pick(rpi0).shims()
    assert "/opt/zig/zig c++ -target arm-linux-gnueabihf.2.41" in files["bin/arm-linux-gnueabihf-g++"]
    assert "exec /usr/bin/arm-linux-gnueabihf-ar " in files["bin/ar"]  # Debian's binutils
    jetson = toolchain.pick(targets.get("jetson-nano")).shims()["bin/gcc"]
    assert "-target aarch64-linux-gnu.2.27 -mcpu=cortex_a57" in jetson


def test_static_shims_are_musl_and_static():
    body = toolchain.pick(targets.get("rpi0"), static=True).shims()["bin/c++"]
    assert "/opt/zig/zig c++ -target arm-linux-musleabihf -mcpu=arm1176jzf_s" in body
    assert " -static " in body and "_TIME_BITS" not in body
    assert "-target aarch64-linux-musl -mcpu=cortex_a72" in \
        toolchain.pick(targets.get("rpi4"), static=True).shims()["bin/gcc"]


def test_summary_names_the_toolchain_and_zigs_version():
    import importlib.metadata
    zig = toolchain.pick(targets.get("rpi0"), static=True).summary()
    assert zig["name"] == "zig" and zig["version"] == importlib.metadata.version("ziglang")
    assert zig["static"] is True and "arm-linux-musleabihf" in zig["description"]
    assert toolchain.pick(targets.get("rpi3")).summary()["name"] == "gcc-cross"


def test_zig_shim_makes_armv6_hard_float_code_on_the_host(tmp_path):
    """The rpi0 shim, pointed at the installed ziglang, compiles and links a real program: ARMv6,
    Thumb-1 only, no NEON, hard-float, Raspberry Pi OS's loader, glibc no newer than bullseye's."""
    from xbuild.toolchain.zig import installed
    home, _ = installed()
    tc = toolchain.pick(targets.get("rpi0").with_os("bullseye"))
    files = {rel: text.replace(tc.definition.home, str(home)) for rel, text in tc.shims().items()}
    shim = _write(tmp_path, files) / "bin" / "gcc"
    # zig's own cache (its C runtime for the arm1176 is built there once, then reused)
    out = _compile(tmp_path, shim, env={"ZIG_GLOBAL_CACHE_DIR": str(Path.home() / ".cache" / "zig"),
                                        "ZIG_LOCAL_CACHE_DIR": str(tmp_path / "zig-local")})
    info = read_elf(out)
    assert info is not None and (info.machine, info.float_abi) == ("ARM", "hard"), info
    assert info.arm_arch in ("v6", "v6KZ", "v6K") and info.arm_thumb_isa == 1 and not info.arm_simd
    assert info.interpreter == "/lib/ld-linux-armhf.so.3"
    assert info.glibc is not None and glibc_tuple(info.glibc) <= (2, 31)


def test_static_for_a_board_without_it_is_a_clean_config_error_from_the_cli(tmp_path):
    from tests.helpers import make_project, xbuild
    project = make_project(tmp_path / "p", {"Makefile": "all:\n\ttrue\n"})
    proc = xbuild("--target", "s390x", "--static", project)
    assert proc.returncode == 6, proc.stderr
    assert "--static is not available for s390x" in proc.stderr and "Traceback" not in proc.stderr
    proc = xbuild("--target", "s390x", project, env={"XBUILD_STATIC": "1"})
    assert proc.returncode == 6 and "--static is not available" in proc.stderr


def test_the_pi_zero_runs_its_dynamic_programs_on_the_shared_debian_armhf_userland(monkeypatch):
    monkeypatch.setattr(targets, "host_arch", lambda: "amd64")
    from xbuild.board.targets import debian_userland_cpu
    from xbuild.containers import images
    assert debian_userland_cpu(targets.get("rpi0")) == "cortex-a7"
    assert debian_userland_cpu(targets.get("rpi3")) is None and debian_userland_cpu(targets.get("armel")) is None
    assert images.runtime_def(targets.get("rpi0")).tag == images.runtime_def(targets.get("rpi3")).tag
    # configure probes of a dynamic build link against that userland; a static build's do not
    assert toolchain.pick(targets.get("rpi0")).environment(1)["QEMU_CPU"] == "cortex-a7"
    assert toolchain.pick(targets.get("rpi0"), static=True).environment(1)["QEMU_CPU"] == "arm1176"


def test_zig_shim_compiles_several_sources_into_one_object_each(tmp_path):
    """`zig cc -c a.c b.c` alone writes one a.o holding both, and a Makefile that then links a.o
    and b.o (lz4's does) fails with duplicate symbols: the shim compiles them one by one, as gcc."""
    from xbuild.toolchain.zig import installed
    home, _ = installed()
    tc = toolchain.pick(targets.get("rpi0"))
    files = {rel: text.replace(tc.definition.home, str(home)) for rel, text in tc.shims().items()}
    shim = _write(tmp_path, files) / "bin" / "gcc"
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.c").write_text("int a(void) { return 1; }\n")
    (src / "b.c").write_text("int b(void) { return 2; }\n")
    env = {"PATH": "/usr/bin:/bin", "XBUILD_SRC": str(src),
           "ZIG_GLOBAL_CACHE_DIR": str(Path.home() / ".cache" / "zig"),
           "ZIG_LOCAL_CACHE_DIR": str(tmp_path / "zig-local")}

    def cc(*args):
        proc = subprocess.run([str(shim), *args], cwd=src, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr

    def symbols(obj):
        out = subprocess.run(["sh", str(tmp_path / "bin" / "nm"), str(src / obj)], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        return {line.split()[-1] for line in out.splitlines() if " T " in line}

    shim.chmod(0o755)
    _tool("arm-linux-gnueabihf-nm")
    cc("-O2", "-c", "a.c", "b.c")
    assert symbols("a.o") == {"a"} and symbols("b.o") == {"b"}
    cc("-c", "b.c", "-o", "both.o")  # -o: one source, one named object, untouched
    assert symbols("both.o") == {"b"}
    (src / "bad.c").write_text("int bad(void) { return undeclared; }\n")
    proc = subprocess.run([str(shim), "-c", "a.c", "bad.c"], cwd=src, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and "undeclared" in proc.stderr  # a failure is not swallowed


@pytest.mark.parametrize("args,debug,gc", [
    (["-O2", "-c", "a.c", "-o", "a.o"], False, False),       # no -g: no DWARF, as gcc
    (["-O2", "-g", "-c", "a.c", "-o", "a.o"], True, False),  # the project's -g is its choice
    (["-ggdb3", "-c", "a.c"], True, False),
    (["-gz", "-c", "a.c"], False, False),                    # compression alone asks no debug info
    (["-g0", "-c", "a.c"], False, False),
    (["a.o", "-o", "a"], False, True),                       # a link: zig's runtime collected
    (["-g", "a.o", "-o", "a"], True, True),
    (["-Wl,-r", "a.o", "-o", "b.o"], False, False),          # a relocatable link keeps all
])
def test_zig_shim_asks_no_debug_info_and_collects_sections_of_links_only(tmp_path, args, debug, gc):
    """zig cc writes DWARF unless told -g0 (and a later -g does not undo it), and links all of
    compiler_rt unless sections are collected, which on a -c call empties the object."""
    tc = toolchain.pick(targets.get("rpi0"))
    fake = tmp_path / "zig"
    fake.mkdir()
    (fake / "zig").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (fake / "zig").chmod(0o755)
    from xbuild.toolchain.zig import RUNTIME
    runtime = tmp_path / "runtime" / "arm-linux-gnueabihf.2.41" / "libcompiler_rt.a"
    runtime.parent.mkdir(parents=True)
    runtime.write_bytes(b"!<arch>\n")  # as the image holds it (image_layer)
    files = {rel: text.replace(RUNTIME, str(runtime.parent.parent)).replace(tc.definition.home, str(fake))
             for rel, text in tc.shims().items()}
    shim = _write(tmp_path, files) / "bin" / "gcc"
    out = subprocess.run(["sh", str(shim), *args], env={"PATH": "/usr/bin:/bin", "XBUILD_CCACHE": ""},
                         capture_output=True, text=True, timeout=30, check=True).stdout.splitlines()
    assert ("-g0" not in out) == debug, out
    assert ("-Wl,--gc-sections" in out) == gc, out
    # a link takes the image's compiler_rt, built without debug information, instead of zig's
    assert (["-rtlib=none", str(runtime)] == out[out.index("-Wl,--gc-sections") + 1:][:2]) if gc \
        else "-rtlib=none" not in out, out
    assert out[-len(args):] == args  # the project's own flags last: they win over the shim's


def test_only_zig_strips_the_runtimes_debug_information_and_keep_debug_skips_it():
    zig, gcc = toolchain.pick(targets.get("rpi0")), toolchain.pick(targets.get("rpi3"))
    script = zig.finish(False)
    assert "/usr/bin/arm-linux-gnueabihf-strip --strip-debug" in script and "/xbuild/stage" in script
    assert zig.finish(True) == "" and gcc.finish(False) == ""


def test_zig_shims_drop_the_target_cc_rs_adds_for_clang(tmp_path):
    """cc-rs (a Rust build script) takes zig for clang and adds --target=<Rust triple>, which zig
    refuses: the shim runs zig without it, with its own -target, the rest in order."""
    body = toolchain.pick(targets.get("rpi0"), "cross").shims()["bin/cc"]
    shim = tmp_path / "cc"
    shim.write_text(body.replace("/opt/zig/zig ", "printf '%s\\n' "))
    proc = subprocess.run(["sh", str(shim), "-O2", "--target=arm-unknown-linux-gnueabihf", "-c", "a.c",
                           "-o", "a.o"], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "XBUILD_SRC": str(tmp_path)})
    args = proc.stdout.split("\n")
    assert proc.returncode == 0, proc.stderr
    assert not [a for a in args if a.startswith("--target")] and args[1] == "-target"
    assert args[-6:] == ["-O2", "-c", "a.c", "-o", "a.o", ""]
