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

The families differ only in how a compiler is called and what the image holds (gcc.py, zig.py);
what they share is base.py."""

from __future__ import annotations

import functools

from xbuild import schema
from xbuild.datafiles import toolchain_files
from xbuild.errors import ConfigError
from xbuild.request import Mode
from xbuild.targets import Target, host_arch
from xbuild.toolchain.base import BIN as BIN
from xbuild.toolchain.base import PREFIX as PREFIX
from xbuild.toolchain.base import ROOT as ROOT
from xbuild.toolchain.base import Toolchain, ToolchainDef
from xbuild.toolchain.base import multiarch as multiarch
from xbuild.toolchain.gcc import Gcc
from xbuild.toolchain.zig import Zig

_PACKAGE = schema.text('a Debian package name such as "crossbuild-essential-{arch}"',
                       r"[a-z0-9][a-z0-9+.{}-]+(:[a-z0-9{}]+)?")
_TOOL = schema.text("a binutils tool name such as ar", r"[a-z][a-z0-9+._-]*")
TOOLCHAIN = schema.Table({
    "description": schema.text(required=True),
    "family": schema.one_of(lambda: _families(), "a toolchain family", required=True),
    "mode": schema.one_of(tuple(m.value for m in Mode), required=True),
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
    return {"gcc": Gcc, "zig": Zig}


@functools.cache
def all_toolchains() -> dict[str, ToolchainDef]:
    """Every toolchains/*.toml, loaded and checked (which files: datafiles.toolchain_files)."""
    return {d.name: d for d in map(_load, toolchain_files())}


def get(name: str, target: Target, static: bool = False) -> Toolchain:
    defn = all_toolchains()[name]
    return _families()[defn.family](defn, target, static)


def pick(target: Target, mode: Mode = Mode.CROSS, static: bool = False) -> Toolchain:
    """The toolchain of a build: emulate -> the release's native GCC; hybrid -> the x86-64 cross
    GCC in the emulate root filesystem; --static -> zig with musl;
    a board that needs its C runtime built for its exact CPU (target.toolchain, the Pi Zero/1) or
    a release older than the suite its packages come from (L4T R32 on bullseye) -> zig; else
    Debian's GCC cross compiler."""
    if static:
        _check_static(target, mode)
        return get("zig", target, static=True)
    if mode == Mode.EMULATE:
        if target.toolchain:  # its release's own GCC makes what the board cannot run
            raise ConfigError(f"{target.name} builds with {target.toolchain} in cross mode, not "
                              f"--mode emulate: Debian's native {target.debian_arch} GCC links its "
                              f"own C runtime, built for a newer CPU than the {target.name}'s",
                              hint="drop --mode emulate")
        return get("gcc-native", target)
    if mode == Mode.HYBRID:
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


def _check_static(target: Target, mode: Mode) -> None:
    from xbuild import targets
    musl = all_toolchains()["zig"].musl or {}
    if target.triple not in musl:
        boards = sorted(t.name for t in targets.all_targets().values() if t.triple in musl)
        raise ConfigError(f"--static is not available for {target.name} ({target.debian_arch}): "
                          f"static builds are zig + musl, for the ARM boards",
                          hint=f"boards with --static: {', '.join(boards)}; or build {target.name} "
                               "without --static")
    if Mode(mode).emulated:
        raise ConfigError(f"--static builds with zig in cross mode, not --mode {mode}",
                          hint=f"drop --mode {mode} (or --static)")
