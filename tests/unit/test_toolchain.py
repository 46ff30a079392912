"""xbuild.toolchain: the shims, the CMake toolchain file, the Meson cross file and the environment
of a build container. The shims are real shell scripts that call Debian's cross compilers by
absolute path, so they are run here on the host (where those compilers are installed by
`scripts/setup.sh --tests`) and their output is read back as ELF; the CMake toolchain file drives
a real CMake configure and build."""

from __future__ import annotations

import configparser
import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from xbuild import targets, toolchain
from xbuild.elf import read_elf

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
    return _write(tmp_path, toolchain.shims(targets.get(target), mode)) / "bin"


def _compile(tmp_path: Path, shim: Path, *flags: str) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "hello.c").write_text(C_SOURCE)
    out = src / "hello"
    proc = subprocess.run(["sh", str(shim), *flags, "hello.c", "-o", "hello"], cwd=src,
                          env={"PATH": "/usr/bin:/bin", "XBUILD_SRC": str(src)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


# target, cross compiler that must exist, machine, float ABI, ARM architecture
CROSS = [
    ("rpi3", "arm-linux-gnueabihf-gcc", "ARM", "hard", "v8-A"),
    ("rpi0", "arm-linux-gnueabi-gcc", "ARM", "soft", "v6KZ"),
    ("rpi3-64", "aarch64-linux-gnu-gcc", "AArch64", None, None),
]


@pytest.mark.parametrize("target, compiler, machine, float_abi, arch", CROSS)
def test_plain_gcc_reaches_the_cross_compiler_with_the_boards_tuning(tmp_path, target, compiler,
                                                                     machine, float_abi, arch):
    """A Makefile's plain `gcc` (and `cc`, and the triple-prefixed name) gives target code, tuned
    for the board: rpi0's ARMv6 (not Debian armel's ARMv5TE default), rpi3's ARMv8 AArch32."""
    _tool(compiler)
    t = targets.get(target)
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
    files = toolchain.shims(targets.get("rpi3"), "emulate")
    assert "exec /usr/bin/gcc -mcpu=cortex-a53" in files["bin/gcc"]
    assert "exec /usr/bin/cpp -ffile-prefix-map" in files["bin/cpp"]  # no tuning for the preprocessor
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
    body = toolchain.shims(odd, "cross")["bin/gcc"]
    assert "'-DNAME=two words' -O2" in body


def test_cmake_toolchain_file_cross_compiles_a_real_project(tmp_path):
    """The toolchain file, pointed at the shims (its /xbuild/bin moved to tmp_path/bin), makes
    CMake build an ARM executable with the target's compiler, found without any -D option."""
    _tool("cmake")
    _tool("arm-linux-gnueabihf-gcc")
    target = targets.get("rpi3")
    bin_dir = _shims(tmp_path, "rpi3")
    text = toolchain.cmake_toolchain(target).replace(toolchain.BIN, str(bin_dir))
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
    text = toolchain.cmake_toolchain(targets.get(target))
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
    ini.read_string(toolchain.meson_cross(t))
    unquote = {k: v.strip("'") for k, v in ini["host_machine"].items()}
    assert unquote == {"system": "linux", "cpu_family": cpu_family, "cpu": cpu, "endian": endian}
    binaries = {k: v.strip("'") for k, v in ini["binaries"].items()}
    assert binaries["c"] == f"{toolchain.BIN}/{t.triple}-gcc"  # through the shims: tuned
    assert binaries["cpp"] == f"{toolchain.BIN}/{t.triple}-g++"
    assert binaries["pkg-config"] == f"{toolchain.BIN}/{t.triple}-pkg-config"


def test_files_per_mode():
    cross = toolchain.files(targets.get("rpi3"), "cross")
    emulate = toolchain.files(targets.get("rpi3"), "emulate")
    assert {"toolchain.cmake", "cross.ini", "bin/pkg-config", "bin/ar"} <= set(cross)
    assert not {"toolchain.cmake", "cross.ini"} & set(emulate)
    assert all(text.startswith("#!/bin/sh\n") for rel, text in cross.items() if rel.startswith("bin/"))


@pytest.mark.parametrize("target", ["rpi0", "rpi3", "arm64", "i386", "s390x"])
def test_environment_cross(target, monkeypatch):
    monkeypatch.setattr(targets, "host_arch", lambda: "amd64")
    monkeypatch.setattr(toolchain, "host_arch", lambda: "amd64")
    t = targets.get(target)
    env = toolchain.environment(t, "cross", jobs=3)
    assert env["PATH"].startswith(f"{toolchain.BIN}:")  # the shims come first
    assert (env["CC"], env["CXX"], env["AR"]) == (f"{t.triple}-gcc", f"{t.triple}-g++", f"{t.triple}-ar")
    assert env["PKG_CONFIG"] == f"{t.triple}-pkg-config"
    assert (env["XBUILD_HOST"], env["XBUILD_BUILD"]) == (t.triple, "x86_64-linux-gnu")  # autoconf
    assert env["XBUILD_CMAKE_TOOLCHAIN"] == "/xbuild/toolchain.cmake"
    assert env["XBUILD_MESON_CROSS"] == "/xbuild/cross.ini"
    assert (env["XBUILD_TARGET"], env["XBUILD_JOBS"], env["XBUILD_DEBIAN_ARCH"]) == (t.name, "3", t.debian_arch)
    assert env["XBUILD_OUT"] == "/xbuild/stage/install" and env["XBUILD_PREFIX"] == "/usr/local"
    # qemu (configure probes, tests) emulates the board's CPU, only where qemu runs at all
    assert env.get("QEMU_CPU") == ({"rpi0": "arm1176", "rpi3": "max", "arm64": "cortex-a53"}.get(target))


@pytest.mark.parametrize("target", ["rpi0", "rpi3", "riscv64"])
def test_environment_emulate(target, monkeypatch):
    monkeypatch.setattr(targets, "host_arch", lambda: "amd64")
    monkeypatch.setattr(toolchain, "host_arch", lambda: "amd64")
    t = targets.get(target)
    env = toolchain.environment(t, "emulate", jobs=1)
    assert (env["AR"], env["RANLIB"], env["STRIP"], env["PKG_CONFIG"]) == ("ar", "ranlib", "strip", "pkg-config")
    assert env["XBUILD_BUILD"] == env["XBUILD_HOST"] == t.triple  # native inside the target's root
    assert env["XBUILD_CMAKE_TOOLCHAIN"] == env["XBUILD_MESON_CROSS"] == ""
    assert env["CC"] == f"{t.triple}-gcc"  # the triple-named shim: tuned, native
    assert env.get("QEMU_CPU") == t.qemu_cpu


def test_environment_on_an_arm64_host_names_it_as_the_build_machine(monkeypatch):
    monkeypatch.setattr(targets, "host_arch", lambda: "arm64")
    monkeypatch.setattr(toolchain, "host_arch", lambda: "arm64")
    env = toolchain.environment(targets.get("rpi3"), "cross", jobs=1)
    assert env["XBUILD_BUILD"] == "aarch64-linux-gnu"
    assert "QEMU_CPU" not in env  # armhf runs natively on an arm64 host: no qemu, no model
