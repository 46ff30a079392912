"""Toolchains: toolchains/*.toml loaded into frozen `ToolchainDef`s, and one small interface.

A (board, release, mode, static) picks one toolchain (`pick`); the chosen `Toolchain` yields what a
build container needs to aim every tool at the target, written fresh for each build:

- /xbuild/bin: shims early on PATH, so a Makefile that calls plain `gcc`, `ar`, `ranlib`,
  `strip` or `pkg-config` reaches the target's tools, and every compiler call carries the board's
  flags (a Makefile that overrides CFLAGS cannot drop them);
- a CMake toolchain file and a Meson cross file (cross mode);
- autoconf's answers for the probes a cross configure cannot run (cross mode, glibc: configsite.py);
- the environment the recipes read (XBUILD_*, CC, AR, ...);
- what its builder image needs on top of the Debian base (images.py).

The families differ only in how a compiler is called and what the image holds (gcc.py, zig.py)."""

from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass

from xbuild import configsite, schema
from xbuild.datafiles import data_files
from xbuild.errors import ConfigError
from xbuild.targets import Target, host_arch

ROOT = "/xbuild"
BIN = f"{ROOT}/bin"
PREFIX = "/usr/local"
_MESON_CPU_FAMILY = {"arm": "arm", "aarch64": "aarch64", "i686": "x86", "powerpc64le": "ppc64",
                     "s390x": "s390x", "riscv64": "riscv64", "x86_64": "x86_64"}
_GNU_HOST = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}


@dataclass(frozen=True)
class ToolchainDef:
    """One toolchains/*.toml file."""
    name: str
    description: str
    family: str                    # gcc | zig: the Python class that knows how to call it
    mode: str                      # cross | emulate: where it runs
    packages: tuple[str, ...]      # Debian packages its builder image installs ({arch})
    binutils: tuple[str, ...]      # tools shimmed as /usr/bin/{triple}-<tool>
    compilers: dict[str, str]      # shim name -> command ({triple}, zig: {zig} {target} {cpu})
    home: str = ""                 # zig: where the ziglang package sits in the image
    cache: str = ""                # zig: its global cache, warmed when the image is made
    musl: dict[str, str] | None = None  # zig: GNU triple -> musl target, for --static
    defines: tuple = ()            # zig: [{suite, arch, flags}] a suite's own GCC implies


def multiarch(target: Target) -> str:
    """Debian's multiarch directory name: the GNU triple, except i386's."""
    return "i386-linux-gnu" if target.debian_arch == "i386" else target.triple


def _script(body: str) -> str:
    return f"#!/bin/sh\n{body}\n"


@dataclass(frozen=True)
class Toolchain:
    """A toolchain definition applied to one board on one release (static: --static)."""
    definition: ToolchainDef
    target: Target
    static: bool = False

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def mode(self) -> str:
        return self.definition.mode

    @property
    def version(self) -> str:
        """The toolchain's own version where the data or the install knows it (zig); GCC's comes
        from the image's packages, which the image tag and the build's meta/toolchain.txt record."""
        return ""

    def _fill(self, text: str) -> str:
        t = self.target
        return text.format(arch=t.debian_arch, triple=t.triple, **self._placeholders())

    def _placeholders(self) -> dict[str, str]:
        return {}

    def compiler(self, shim: str) -> str:
        """The command line a compiler shim runs, before "$@"."""
        return self._fill(self.definition.compilers[shim])

    def flags(self, shim: str) -> list[str]:
        """Flags every call of that compiler carries (the board's tuning, the target's defines)."""
        return []

    def shims(self) -> dict[str, str]:
        t = self.target.triple
        files: dict[str, str] = {}
        for name in self.definition.compilers:
            flags = " ".join(shlex.quote(f) for f in self.flags(name))
            # The build path must not reach the output (debug info, __FILE__): map it to ".".
            # $XBUILD_CCACHE: "ccache" when the compiler cache is on (compiler_cache.py), else empty.
            body = (f'exec $XBUILD_CCACHE {self.compiler(name)}{" " + flags if flags else ""} '
                    '-ffile-prefix-map="${XBUILD_SRC:-/xbuild/src}"=. "$@"')
            files[name] = files[f"{t}-{name}"] = _script(body)
        for tool in self.definition.binutils:
            files[tool] = _script(f'exec /usr/bin/{t}-{tool} "$@"')
        if self.mode == "cross":
            pc = (f"PKG_CONFIG_LIBDIR=/usr/lib/{multiarch(self.target)}/pkgconfig:/usr/share/pkgconfig "
                  'exec /usr/bin/pkgconf "$@"')
            files["pkg-config"] = files[f"{t}-pkg-config"] = _script(pc)
        return {f"bin/{name}": body for name, body in files.items()}

    def finish(self, keep_debug: bool) -> str:
        """Shell the build script runs after collecting the artifact's files into /xbuild/stage
        (keep_debug: --keep-debug). Nothing for GCC: what it links carries no debug
        information the project did not ask for."""
        return ""

    def cmake_toolchain(self) -> str:
        t = self.target.triple
        return "\n".join([
            f"# Written by xbuild for this build: the {self.name} toolchain through xbuild's shims.",
            "set(CMAKE_SYSTEM_NAME Linux)",
            f"set(CMAKE_SYSTEM_PROCESSOR {t.split('-')[0]})",
            f"set(CMAKE_C_COMPILER {BIN}/{t}-gcc)",
            f"set(CMAKE_CXX_COMPILER {BIN}/{t}-g++)",
            f"set(CMAKE_AR /usr/bin/{t}-ar CACHE FILEPATH \"\")",
            f"set(CMAKE_RANLIB /usr/bin/{t}-ranlib CACHE FILEPATH \"\")",
            f"set(CMAKE_LIBRARY_ARCHITECTURE {multiarch(self.target)})",
            f"set(PKG_CONFIG_EXECUTABLE {BIN}/{t}-pkg-config)",
            # Programs run on the build machine; libraries and headers are the target's (multiarch).
            "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)", ""])

    def meson_cross(self) -> str:
        t = self.target.triple
        cpu = t.split("-")[0]
        return "\n".join([
            "[binaries]",
            f"c = '{BIN}/{t}-gcc'", f"cpp = '{BIN}/{t}-g++'", f"ar = '/usr/bin/{t}-ar'",
            f"strip = '/usr/bin/{t}-strip'", f"pkg-config = '{BIN}/{t}-pkg-config'", "",
            "[host_machine]", "system = 'linux'", f"cpu_family = '{_MESON_CPU_FAMILY.get(cpu, cpu)}'",
            f"cpu = '{cpu}'", f"endian = '{self.target.abi.endian}'", ""])

    def libc_answers(self) -> str:
        """Whose autoconf answers a build gets (configsite.py): glibc's in cross mode; none where
        configure runs its probes (emulate, hybrid), nor for musl (--static), which has none yet."""
        return configsite.GLIBC if self.mode == "cross" and not self.static else ""

    def config_site(self) -> str:
        return configsite.render(libc) if (libc := self.libc_answers()) else ""

    def files(self) -> dict[str, str]:
        out = self.shims()
        if self.mode == "cross":
            out["toolchain.cmake"] = self.cmake_toolchain()
            out["cross.ini"] = self.meson_cross()
        if site := self.config_site():
            out[configsite.PATH] = site
        return out

    def environment(self, jobs: int) -> dict[str, str]:
        t, target = self.target.triple, self.target
        cross = self.mode == "cross"
        return {
            "PATH": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/home/builder", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
            "XBUILD_TARGET": target.name, "XBUILD_MODE": self.mode, "XBUILD_JOBS": str(jobs),
            "XBUILD_DEBIAN_ARCH": target.debian_arch, "XBUILD_TOOLCHAIN": self.name,
            "XBUILD_OUT": f"{ROOT}/stage/install", "XBUILD_PREFIX": PREFIX,
            "XBUILD_HOST": t,
            "XBUILD_BUILD": _GNU_HOST.get(host_arch(), "x86_64-linux-gnu") if cross else t,
            "CC": f"{t}-gcc", "CXX": f"{t}-g++",
            "AR": f"{t}-ar" if cross else "ar", "RANLIB": f"{t}-ranlib" if cross else "ranlib",
            "STRIP": f"{t}-strip" if cross else "strip",
            "PKG_CONFIG": f"{t}-pkg-config" if cross else "pkg-config",
            "XBUILD_CMAKE_TOOLCHAIN": f"{ROOT}/toolchain.cmake" if cross else "",
            "XBUILD_MESON_CROSS": f"{ROOT}/cross.ini" if cross else "",
            # configure reads it; xbuild.toml's env (applied after this) may replace or empty it.
            **({"CONFIG_SITE": f"{ROOT}/{configsite.PATH}"} if self.config_site() else {}),
            # Configure probes and tests that run target code go through qemu, as the board's CPU.
            **self.run_env(),
        }

    def run_env(self) -> dict[str, str]:
        return dict(self.target.run_env)

    def image_packages(self) -> list[str]:
        return [self._fill(p) for p in self.definition.packages]

    def summary(self) -> dict:
        """What the manifest and the cache key record of the toolchain."""
        return {"name": self.name, "family": self.definition.family, "version": self.version,
                "static": self.static, "description": self._fill(self.definition.description),
                "config_site": configsite.digest(libc) if (libc := self.libc_answers()) else ""}


_PACKAGE = schema.text('a Debian package name such as "crossbuild-essential-{arch}"',
                       r"[a-z0-9][a-z0-9+.{}-]+(:[a-z0-9{}]+)?")
_TOOL = schema.text("a binutils tool name such as ar", r"[a-z][a-z0-9+._-]*")
TOOLCHAIN = schema.Table({
    "description": schema.text(required=True),
    "family": schema.one_of(lambda: _families(), "a toolchain family", required=True),
    "mode": schema.one_of(("cross", "emulate", "hybrid"), required=True),
    "packages": schema.List(_PACKAGE, required=True),
    "binutils": schema.List(_TOOL, required=True),
    "compilers": schema.Names(schema.one_of(("gcc", "cc", "g++", "c++", "cpp"), "a compiler shim"),
                              schema.text("a command line"), required=True, empty=False),
    "home": schema.text("an absolute path", r"/\S*"),
    "cache": schema.text("an absolute path", r"/\S*"),
    "musl": schema.Names(schema.text("a GNU triple", r"[a-z0-9_]+(-[a-z0-9_]+)+"),
                         schema.text("a zig musl target", r"[a-z0-9_]+(-[a-z0-9_]+)+")),
    "defines": schema.Tables(schema.Table({
        "suite": schema.text("a Debian suite name", r"[a-z][a-z0-9.-]*", required=True),
        "arch": schema.text("a Debian architecture", r"[a-z0-9]+", required=True),
        "flags": schema.List(schema.text("a compiler flag such as -D_TIME_BITS=64", r"-\S+"),
                             required=True),
    })),
})


def _load(path) -> ToolchainDef:
    data = schema.load(path, TOOLCHAIN, hint="toolchains/zig.toml shows every key of a toolchain")
    return ToolchainDef(name=path.stem, **data)


def _families() -> dict[str, type[Toolchain]]:
    from xbuild.toolchain.gcc import Gcc
    from xbuild.toolchain.zig import Zig
    return {"gcc": Gcc, "zig": Zig}


@functools.cache
def all_toolchains() -> dict[str, ToolchainDef]:
    """A site's XBUILD_DATA_DIR may bring its own toolchains/; boards and recipes alone are the
    usual case there, so without one the installation's own are used."""
    from xbuild import datafiles
    if (datafiles.DATA_DIR / "toolchains").is_dir():
        files = data_files("toolchains")
    else:
        files = sorted((datafiles._default_dir() / "toolchains").glob("*.toml"))
    return {d.name: d for d in map(_load, files)}


def get(name: str, target: Target, static: bool = False) -> Toolchain:
    defn = all_toolchains()[name]
    return _families()[defn.family](defn, target, static)


def pick(target: Target, mode: str = "cross", static: bool = False) -> Toolchain:
    """The toolchain of a build: emulate -> the release's native GCC; hybrid -> the x86-64 cross
    GCC in the emulate root filesystem; --static -> zig with musl;
    a board that needs its C runtime built for its exact CPU (target.toolchain, the Pi Zero/1) or
    a release older than the suite its packages come from (L4T R32 on bullseye) -> zig; else
    Debian's GCC cross compiler."""
    if static:
        _check_static(target, mode)
        return get("zig", target, static=True)
    if mode == "emulate":
        if target.toolchain:  # its release's own GCC makes what the board cannot run
            raise ConfigError(f"{target.name} builds with {target.toolchain} in cross mode, not "
                              f"--mode emulate: Debian's native {target.debian_arch} GCC links its "
                              f"own C runtime, built for a newer CPU than the {target.name}'s",
                              hint="drop --mode emulate")
        return get("gcc-native", target)
    if mode == "hybrid":
        _check_hybrid(target)
        return get("gcc-hybrid", target)
    if target.toolchain == "zig" or needs_exact_glibc(target):
        return get("zig", target)
    return get("gcc-cross", target)


def needs_exact_glibc(target: Target) -> bool:
    """The release's glibc is older than its package suite's: Debian's GCC would link against the
    suite's newer libc, so zig builds stubs for the release's own version."""
    from xbuild import releases
    from xbuild.elf import glibc_tuple
    suite = releases.all_releases().get(target.suite)
    return suite is not None and glibc_tuple(target.glibc) < glibc_tuple(suite.glibc)


def _check_hybrid(target: Target) -> None:
    """Hybrid runs Debian's x86-64 cross GCC against the release's own libc6-dev: not for boards
    that need zig (an exact CPU or an older glibc than the suite's), nor on another host CPU."""
    if host_arch() != "amd64":
        raise ConfigError(f"--mode hybrid runs Debian's x86-64 cross compiler: this machine is "
                          f"{host_arch()}", hint="use --mode emulate (or cross) here")
    if target.toolchain or needs_exact_glibc(target):
        why = (f"its C runtime must be built for its exact CPU ({target.toolchain})" if target.toolchain
               else f"its glibc {target.glibc} is older than its package suite's")
        raise ConfigError(f"{target.name} on {target.os_name} cannot build with --mode hybrid: {why}, "
                          "which Debian's GCC does not do", hint="drop --mode hybrid: cross mode uses zig")


def _check_static(target: Target, mode: str) -> None:
    from xbuild import targets
    musl = all_toolchains()["zig"].musl or {}
    if target.triple not in musl:
        boards = sorted(t.name for t in targets.all_targets().values() if t.triple in musl)
        raise ConfigError(f"--static is not available for {target.name} ({target.debian_arch}): "
                          f"static builds are zig + musl, for the ARM boards",
                          hint=f"boards with --static: {', '.join(boards)}; or build {target.name} "
                               "without --static")
    if mode in ("emulate", "hybrid"):
        raise ConfigError(f"--static builds with zig in cross mode, not --mode {mode}",
                          hint=f"drop --mode {mode} (or --static)")
