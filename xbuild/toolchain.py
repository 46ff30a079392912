"""What a build container needs to aim every tool at the target, written fresh for each build:

- /xbuild/bin: shims early on PATH, so a Makefile that calls plain `gcc`, `ar`, `ranlib`,
  `strip` or `pkg-config` reaches the target's tools, and every compiler call carries the board's
  tuning flags (a Makefile that overrides CFLAGS cannot drop them);
- a CMake toolchain file and a Meson cross file (cross mode);
- the environment the recipes read (XBUILD_*, CC, AR, ...)."""

from __future__ import annotations

import shlex

from xbuild.targets import Target, host_arch

ROOT = "/xbuild"
BIN = f"{ROOT}/bin"
PREFIX = "/usr/local"
_COMPILERS = {"gcc": "gcc", "cc": "gcc", "g++": "g++", "c++": "g++", "cpp": "cpp"}
_BINUTILS = ["ar", "ranlib", "strip", "nm", "ld", "as", "objcopy", "objdump", "readelf", "size"]
_MESON_CPU_FAMILY = {"arm": "arm", "aarch64": "aarch64", "i686": "x86", "powerpc64le": "ppc64",
                     "s390x": "s390x", "riscv64": "riscv64", "x86_64": "x86_64"}
_GNU_HOST = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}


def multiarch(target: Target) -> str:
    """Debian's multiarch directory name: the GNU triple, except i386's."""
    return "i386-linux-gnu" if target.debian_arch == "i386" else target.triple


def _script(body: str) -> str:
    return f"#!/bin/sh\n{body}\n"


def shims(target: Target, mode: str) -> dict[str, str]:
    tune = " ".join(shlex.quote(f) for f in target.cflags)
    tune = f" {tune}" if tune else ""
    t = target.triple
    files: dict[str, str] = {}
    for name, real in _COMPILERS.items():
        # cross: the triple-prefixed Debian cross compiler; emulate: the native one. Absolute paths,
        # because the shim itself is what PATH finds first.
        exe = f"/usr/bin/{t}-{real}" if mode == "cross" else f"/usr/bin/{real}"
        # The build path must not reach the output (debug info, __FILE__): map it to ".".
        body = (f'exec {exe}{"" if real == "cpp" else tune} '
                '-ffile-prefix-map="${XBUILD_SRC:-/xbuild/src}"=. "$@"')
        files[name] = files[f"{t}-{name}"] = _script(body)
    if mode == "cross":
        for tool in _BINUTILS:
            files[tool] = _script(f'exec /usr/bin/{t}-{tool} "$@"')
        pc = (f"PKG_CONFIG_LIBDIR=/usr/lib/{multiarch(target)}/pkgconfig:/usr/share/pkgconfig "
              'exec /usr/bin/pkgconf "$@"')
        files["pkg-config"] = files[f"{t}-pkg-config"] = _script(pc)
    return {f"bin/{name}": body for name, body in files.items()}


def cmake_toolchain(target: Target) -> str:
    t = target.triple
    return "\n".join([
        "# Written by xbuild for this build: Debian cross toolchain through xbuild's shims.",
        "set(CMAKE_SYSTEM_NAME Linux)",
        f"set(CMAKE_SYSTEM_PROCESSOR {t.split('-')[0]})",
        f"set(CMAKE_C_COMPILER {BIN}/{t}-gcc)",
        f"set(CMAKE_CXX_COMPILER {BIN}/{t}-g++)",
        f"set(CMAKE_LIBRARY_ARCHITECTURE {multiarch(target)})",
        f"set(PKG_CONFIG_EXECUTABLE {BIN}/{t}-pkg-config)",
        # Programs run on the build machine; libraries and headers are the target's (multiarch).
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)", ""])


def meson_cross(target: Target) -> str:
    t = target.triple
    cpu = t.split("-")[0]
    return "\n".join([
        "[binaries]",
        f"c = '{BIN}/{t}-gcc'", f"cpp = '{BIN}/{t}-g++'", f"ar = '/usr/bin/{t}-ar'",
        f"strip = '/usr/bin/{t}-strip'", f"pkg-config = '{BIN}/{t}-pkg-config'", "",
        "[host_machine]", "system = 'linux'", f"cpu_family = '{_MESON_CPU_FAMILY.get(cpu, cpu)}'",
        f"cpu = '{cpu}'", f"endian = '{target.abi.endian}'", ""])


def files(target: Target, mode: str) -> dict[str, str]:
    out = shims(target, mode)
    if mode == "cross":
        out["toolchain.cmake"] = cmake_toolchain(target)
        out["cross.ini"] = meson_cross(target)
    return out


def environment(target: Target, mode: str, jobs: int) -> dict[str, str]:
    t = target.triple
    cross = mode == "cross"
    env = {
        "PATH": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/home/builder", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
        "XBUILD_TARGET": target.name, "XBUILD_MODE": mode, "XBUILD_JOBS": str(jobs),
        "XBUILD_DEBIAN_ARCH": target.debian_arch,
        "XBUILD_OUT": f"{ROOT}/stage/install", "XBUILD_PREFIX": PREFIX,
        "XBUILD_HOST": t, "XBUILD_BUILD": _GNU_HOST.get(host_arch(), "x86_64-linux-gnu") if cross else t,
        "CC": f"{t}-gcc", "CXX": f"{t}-g++",
        "AR": f"{t}-ar" if cross else "ar", "RANLIB": f"{t}-ranlib" if cross else "ranlib",
        "STRIP": f"{t}-strip" if cross else "strip",
        "PKG_CONFIG": f"{t}-pkg-config" if cross else "pkg-config",
        "XBUILD_CMAKE_TOOLCHAIN": f"{ROOT}/toolchain.cmake" if cross else "",
        "XBUILD_MESON_CROSS": f"{ROOT}/cross.ini" if cross else "",
        # Configure probes and tests that run target code go through qemu, as the board's CPU.
        **target.run_env,
    }
    return env
